"""The Tavily settings as the proxy reads them: environment over the providers file, over
the defaults; bad values refused at start with a message naming the variable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import load_settings
from proxy.web_tools.configured import tavily_settings
from proxy.web_tools.settings import DEFAULT_BASE_URL

ROOT = Path(__file__).resolve().parents[2]
KEY = "tvly-dev-0123456789abcdef"


def load(tmp_path: Path, environ: dict[str, str], *argv: str) -> object:
    return tavily_settings(load_settings(["--env-file", str(tmp_path / "none"), *argv], environ))


def test_no_key_no_web_tools(tmp_path: Path) -> None:
    assert load(tmp_path, {}) is None


def test_every_variable_is_read(tmp_path: Path) -> None:
    made = load(tmp_path, {
        "TAVILY_API_KEY": KEY, "TAVILY_BASE_URL": "https://tavily.internal.example/",
        "LOCAL_PROXY_ADDRESS": "http://proxy.example:3128", "TAVILY_MAX_RESULTS": "8",
        "TAVILY_SEARCH_DEPTH": "Advanced", "TAVILY_TOPIC": "news",
        "TAVILY_FETCH_MAX_CHARS": "2000"})
    assert made is not None
    assert (made.api_key, made.base_url, made.proxy) == (
        KEY, "https://tavily.internal.example", "http://proxy.example:3128")
    assert (made.max_results, made.search_depth, made.topic, made.fetch_max_chars) == (
        8, "advanced", "news", 2000)
    both = load(tmp_path, {"TAVILY_API_KEY": KEY, "LOCAL_PROXY_ADDRESS": "http://a:1",
                           "TAVILY_PROXY_ADDRESS": "http://b:2"})
    assert both is not None and both.proxy == "http://b:2"  # the Tavily-only one wins


def test_the_providers_file_and_the_environment_over_it(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "tavily_key": KEY, "tavily_url": "https://from-file.example",
        "providers": [{"base_url": "https://api.example.com", "api_key": "k",
                       "models": [{"id": "m"}]}]}))
    from_file = load(tmp_path, {}, "--config", str(config))
    assert from_file is not None
    assert (from_file.api_key, from_file.base_url) == (KEY, "https://from-file.example")
    over = load(tmp_path, {"TAVILY_API_KEY": "tvly-env-key-999",
                           "TAVILY_BASE_URL": "https://from-env.example"}, "--config", str(config))
    assert over is not None
    assert (over.api_key, over.base_url) == ("tvly-env-key-999", "https://from-env.example")
    default = load(tmp_path, {"TAVILY_API_KEY": KEY})
    assert default is not None and default.base_url == DEFAULT_BASE_URL


def test_a_non_string_key_in_the_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tavily_key": ["tvly-secret-in-a-list"], "providers": [
        {"base_url": "https://api.example.com", "models": [{"id": "m"}]}]}))
    with pytest.raises(SystemExit) as caught:
        load(tmp_path, {}, "--config", str(config))
    assert "tavily_key: must be a string" in str(caught.value)
    assert "tvly-secret" not in str(caught.value)


@pytest.mark.parametrize(("environ", "message"), [
    ({"TAVILY_MAX_RESULTS": "50"}, "TAVILY_MAX_RESULTS must be a whole number from 1 to 20"),
    ({"TAVILY_MAX_RESULTS": "0"}, "TAVILY_MAX_RESULTS must be a whole number from 1 to 20"),
    ({"TAVILY_MAX_RESULTS": "five"}, "TAVILY_MAX_RESULTS='five' is not a valid int"),
    ({"TAVILY_FETCH_MAX_CHARS": "999"}, "TAVILY_FETCH_MAX_CHARS must be a whole number at "
                                        "least 1000"),
    ({"TAVILY_SEARCH_DEPTH": "deep"}, "TAVILY_SEARCH_DEPTH must be basic or advanced"),
    ({"TAVILY_TOPIC": "sports"}, "TAVILY_TOPIC must be general, news or finance"),
    ({"TAVILY_BASE_URL": "ftp://tavily.example"}, "TAVILY_BASE_URL must be an http:// or "
                                                  "https:// URL"),
    ({"TAVILY_PROXY_ADDRESS": "proxy:3128"}, "TAVILY_PROXY_ADDRESS must be an http:// or "
                                             "https:// URL"),
])
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_bad_values_are_refused_at_start(tmp_path: Path, environ: dict[str, str],
                                         message: str, with_key: bool) -> None:
    given = {"TAVILY_API_KEY": KEY, **environ} if with_key else environ
    with pytest.raises(SystemExit) as caught:
        load(tmp_path, given)
    assert message in str(caught.value)


def test_a_key_with_spaces_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="TAVILY_API_KEY must not contain spaces"):
        load(tmp_path, {"TAVILY_API_KEY": "tvly key with spaces"})


def test_python_m_proxy_stops_with_the_message(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TAVILY_API_KEY": KEY, "TAVILY_TOPIC": "sports",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "proxy", "--port", "0", "--env-file",
                           str(tmp_path / "none")], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert "llm-dialect-proxy: TAVILY_TOPIC must be general, news or finance" in done.stderr
    assert KEY not in done.stderr
