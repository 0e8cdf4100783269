"""TavilySettings: the issue's variables, their defaults and bounds, the key kept out of sight."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.web_tools.settings import DEFAULT_BASE_URL, TavilySettings

KEY = "tvly-secret-key-123"


def test_defaults() -> None:
    settings = TavilySettings.from_values({"TAVILY_API_KEY": KEY})
    assert settings == TavilySettings(api_key=KEY)
    assert (settings.base_url, settings.proxy, settings.max_results, settings.search_depth,
            settings.topic, settings.fetch_max_chars) == (DEFAULT_BASE_URL, None, 5, "basic",
                                                          "general", 50_000)


@pytest.mark.parametrize("values", [{}, {"TAVILY_API_KEY": ""}, {"TAVILY_API_KEY": "  "}])
def test_no_key_means_no_web_tools(values: dict[str, str]) -> None:
    assert TavilySettings.from_values(values) is None
    assert TavilySettings.from_values(values, file_url="https://t.example") is None


def test_the_environment_wins_over_the_providers_file() -> None:
    from_file = TavilySettings.from_values({}, file_key="tvly-file", file_url="https://f.example/")
    assert from_file is not None
    assert (from_file.api_key, from_file.base_url) == ("tvly-file", "https://f.example")
    both = TavilySettings.from_values(
        {"TAVILY_API_KEY": KEY, "TAVILY_BASE_URL": "https://env.example"},
        file_key="tvly-file", file_url="https://f.example")
    assert both is not None and (both.api_key, both.base_url) == (KEY, "https://env.example")


def test_every_variable_is_read() -> None:
    settings = TavilySettings.from_values({
        "TAVILY_API_KEY": KEY, "TAVILY_MAX_RESULTS": "20", "TAVILY_SEARCH_DEPTH": "Advanced",
        "TAVILY_TOPIC": "news", "TAVILY_FETCH_MAX_CHARS": "1000",
        "LOCAL_PROXY_ADDRESS": "http://127.0.0.1:3128"})
    assert settings is not None
    assert (settings.max_results, settings.search_depth, settings.topic,
            settings.fetch_max_chars, settings.proxy) == (20, "advanced", "news", 1000,
                                                          "http://127.0.0.1:3128")


def test_the_tavily_proxy_wins_over_the_local_one() -> None:
    settings = TavilySettings.from_values({
        "TAVILY_API_KEY": KEY, "TAVILY_PROXY_ADDRESS": "http://tavily-proxy:8080",
        "LOCAL_PROXY_ADDRESS": "http://local:3128"})
    assert settings is not None and settings.proxy == "http://tavily-proxy:8080"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TAVILY_MAX_RESULTS", "0", "from 1 to 20"),
    ("TAVILY_MAX_RESULTS", "21", "from 1 to 20"),
    ("TAVILY_MAX_RESULTS", "five", "whole number"),
    ("TAVILY_FETCH_MAX_CHARS", "999", "at least 1000"),
    ("TAVILY_FETCH_MAX_CHARS", "1e5", "whole number"),
    ("TAVILY_SEARCH_DEPTH", "deep", "basic or advanced"),
    ("TAVILY_TOPIC", "sports", "general, news or finance"),
    ("TAVILY_BASE_URL", "ftp://tavily.example", "http:// or https://"),
    ("TAVILY_BASE_URL", "https://", "http:// or https://"),
    ("TAVILY_PROXY_ADDRESS", "socks5://127.0.0.1:1080", "http:// or https://"),
    ("TAVILY_PROXY_ADDRESS", "http://127.0.0.1:99999", "not a valid URL"),
])
def test_bad_values_are_refused_with_the_variable_named(name: str, value: str,
                                                        message: str) -> None:
    with pytest.raises(ValueError, match=name) as caught:
        TavilySettings.from_values({"TAVILY_API_KEY": KEY, name: value})
    assert message in str(caught.value)


def test_a_key_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="TAVILY_API_KEY"):
        TavilySettings(api_key="tvly-abc\nX-Evil: 1")


def test_the_key_and_the_proxy_password_stay_out_of_reprs_and_messages() -> None:
    settings = TavilySettings(api_key=KEY, proxy="http://user:hunter2@proxy.example:3128")
    assert KEY not in repr(settings) and "hunter2" not in repr(settings)
    assert KEY not in str(settings)
    with pytest.raises(ValueError) as caught:
        TavilySettings(api_key=KEY, proxy="ftp://user:hunter2@proxy.example")
    assert "hunter2" not in str(caught.value)
    scrubbed = settings.scrub(f"auth {KEY} via http://user:hunter2@proxy.example:3128 failed")
    assert KEY not in scrubbed and "hunter2" not in scrubbed


def test_the_pure_modules_load_neither_aiohttp_nor_asyncio() -> None:
    """Like the dialects, everything here but the client and the resolver is sans-I/O."""
    modules = ["proxy.web_tools.settings", "proxy.web_tools.spec", "proxy.web_tools.urls",
               "proxy.web_tools.results", "proxy.web_tools.session"]
    code = (f"import sys\nfor name in {modules!r}:\n    __import__(name)\n"
            "print(','.join(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('aiohttp', 'asyncio'))))\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=root)
    assert result.stdout.strip() == ""
