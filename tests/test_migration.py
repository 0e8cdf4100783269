"""Coming from the five seed projects: their settings read as ours (proxy/migration.py).

Settings are loaded as the proxy loads them (flags, environment, ``.env``, a working
directory), and each row of the table is checked: mapped and said in the start-up notes,
or refused naming the line. docs/migrating.md's commands run in test_migrating_doc.py.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from proxy import migration
from proxy.client import ProxyClient
from proxy.config import Settings, load_settings
from tests.commands import REPO, block

DOC = REPO / "docs" / "migrating.md"


def load(tmp_path: Path, argv: Sequence[str] = (), env: dict[str, str] | None = None,
         dotenv: str = "") -> Settings:
    """Settings as ``python -m proxy ARGV`` loads them, with ``dotenv`` as .env, in an
    empty working directory."""
    (tmp_path / ".env").write_text(dotenv)
    return load_settings([*argv, "--env-file", str(tmp_path / ".env")], env or {},
                         cwd=tmp_path)


def notes(settings: Settings, level: int | None = None) -> str:
    return "\n".join(text for lv, text in settings.seed_notes if level in (None, lv))


# --- the table, row by row ----------------------------------------------------------------


def test_codingplanproxy_env_is_read_as_ours(tmp_path: Path) -> None:
    settings = load(tmp_path, dotenv=block(DOC, "env", "codingplanproxy"))
    assert (settings.upstream_url, settings.upstream_dialect) == (
        "https://api.anthropic.com", "anthropic")
    assert settings.upstream_api_key == "sk-ant-api03-your-key-here"
    assert settings.model == "claude-sonnet-4-20250514"
    assert settings.upstream_model("") == "claude-sonnet-4-20250514"  # fills in a missing one
    assert settings.upstream_model("claude-opus-4") == "claude-opus-4"  # the request's wins
    assert (settings.default_max_tokens, settings.system_prompt, settings.port,
            settings.proxy_api_key) == (16384, "You are a helpful assistant.", 8000,
                                        "my-proxy-secret")
    said = notes(settings, logging.INFO)
    assert ("BASE_URL (codingplanproxy's, from .env) read as UPSTREAM_URL=https://api."
            "anthropic.com, UPSTREAM_DIALECT=anthropic") in said
    assert "API_KEY (codingplanproxy's, from .env) read as UPSTREAM_API_KEY=***" in said
    assert "MODEL_NAME (codingplanproxy's, from .env) read as MODEL=claude-sonnet" in said
    assert "--claude-code-headers" in said
    assert "sk-ant-api03" not in notes(settings)  # a key is never logged


def test_codingplanproxy_minimal_env_means_the_anthropic_api(tmp_path: Path) -> None:
    settings = load(tmp_path, dotenv="API_KEY=sk-ant-api03-your-key-here\n")
    assert (settings.upstream_url, settings.upstream_dialect) == (
        "https://api.anthropic.com", "anthropic")
    assert "codingplanproxy's default" in notes(settings)


def test_ours_wins_at_the_same_level_and_the_log_says_so(tmp_path: Path) -> None:
    settings = load(tmp_path, dotenv="BASE_URL=http://theirs\nUPSTREAM_URL=http://ours\n")
    assert settings.upstream_url == "http://ours"
    assert settings.upstream_dialect == "openai"  # BASE_URL's dialect went with it
    assert ("BASE_URL (codingplanproxy's, from .env) not used: ours is given, UPSTREAM_URL "
            "(.env)") in notes(settings, logging.WARNING)


def test_a_stray_api_key_never_reaches_another_upstream(tmp_path: Path) -> None:
    """API_KEY is codingplanproxy's key for its upstream; with ours (--upstream) it is
    not sent there, and a stray BASE_URL changes neither the URL nor the dialect."""
    env = {"API_KEY": "some-other-programs-key", "BASE_URL": "http://elsewhere"}
    settings = load(tmp_path, ["--upstream", "https://api.deepseek.com/v1"], env=env)
    assert (settings.upstream_url, settings.upstream_dialect, settings.upstream_api_key) == (
        "https://api.deepseek.com/v1", "openai", "")
    warned = notes(settings, logging.WARNING)
    assert ("API_KEY (codingplanproxy's, from environment) not used: it goes with "
            "codingplanproxy's BASE_URL, and the upstream here is another; give its key as "
            "UPSTREAM_API_KEY") in warned
    assert "BASE_URL (codingplanproxy's, from environment) not used: ours is given, " \
           "UPSTREAM_URL (flag)" in warned
    given = load(tmp_path, env={"API_KEY": "theirs"}, dotenv="UPSTREAM_API_KEY=ours\n")
    assert given.upstream_api_key == "ours"
    assert "not used: ours is given, UPSTREAM_API_KEY" in notes(given, logging.WARNING)


def test_levels_hold_for_their_names_too(tmp_path: Path) -> None:
    """Their variable in the environment beats ours in .env; our flag beats both."""
    settings = load(tmp_path, env={"MODEL_NAME": "env-model"}, dotenv="MODEL=dotenv-model\n")
    assert settings.model == "env-model"
    settings = load(tmp_path, ["--model", "flag-model"], env={"MODEL_NAME": "env-model"})
    assert settings.model == "flag-model"
    assert "MODEL (flag)" in notes(settings, logging.WARNING)


def test_a2o_timeout_and_debug(tmp_path: Path) -> None:
    settings = load(tmp_path, ["--upstream", "http://h/v1/chat/completions", "--timeout",
                               "300", "--debug"])
    assert settings.upstream_url == "http://h/v1"
    assert (settings.read_timeout, settings.log_level) == (300.0, "DEBUG")
    said = notes(settings)
    assert "--timeout (a2o's, a flag) read as READ_TIMEOUT=300: " in said
    assert "never cut" in said
    assert "--debug (a2o's, a flag) read as LOG_LEVEL=DEBUG" in said
    settings = load(tmp_path, ["--timeout", "300", "--read-timeout", "20"])
    assert settings.read_timeout == 20.0


@pytest.mark.parametrize(("value", "level"), [("1", "DEBUG"), ("true", "DEBUG"),
                                              ("0", "INFO"), ("express:*", "INFO")])
def test_debug(tmp_path: Path, value: str, level: str) -> None:
    settings = load(tmp_path, env={"DEBUG": value})
    assert settings.log_level == level
    if value == "express:*":  # another program's DEBUG: left alone, and said
        assert "DEBUG (bbd2api and claude-proxy's, from environment)='express:*' is not 0 " \
               "or 1" in notes(settings, logging.WARNING)
    else:
        assert f"read as LOG_LEVEL={level}" in notes(settings, logging.INFO)
    assert load(tmp_path, env={"DEBUG": "1", "LOG_LEVEL": "WARNING"}).log_level == "WARNING"


def test_claudebridges_settings_are_ours(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"POOL_SIZE": "5"}, dotenv="CLAUDE_TIMEOUT=30\n")
    assert (settings.pool_size, settings.claude_timeout) == (5, 30.0)
    assert not notes(settings, logging.WARNING)


def test_bbd2apis_settings_pick_the_backboard_backend(tmp_path: Path) -> None:
    settings = load(tmp_path, dotenv="BBD_API_KEY=k1,k2\nTHREAD_TTL=900\n")
    assert (settings.upstream_dialect, settings.upstream_api_key) == ("backboard", "k1,k2")
    assert settings.upstream_url == "https://app.backboard.io/api"  # bbd2api's default
    assert settings.thread_ttl == 900
    assert "k1" not in notes(settings, logging.INFO)
    moved = load(tmp_path, env={"BBD_UPSTREAM": "https://b.example/api", "BBD_API_KEY": "k"})
    assert (moved.upstream_url, moved.upstream_dialect) == ("https://b.example/api",
                                                            "backboard")


def test_claudebridge_w_is_refused_naming_the_replacement(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"-w \(claudebridge's, a flag\): .*POOL_SIZE.*"
                       r"--workers N starts N processes.*drop the flag"):
        load(tmp_path, ["-w", "3"])


def test_the_go_proxys_tavily_settings_are_ours(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tavily_key": "tvly-x", "tavily_url": "http://t.example",
                                  "providers": [{"base_url": "http://u", "api_key": "k",
                                                 "models": [{"id": "m"}]}]}))
    settings = load(tmp_path, ["--config", str(config)])
    assert settings.providers_file is not None
    assert not [n for n in notes(settings, logging.WARNING) if "tavily" in n.lower()]
    from proxy.web_tools.configured import tavily_settings
    tavily = tavily_settings(settings)
    assert tavily is not None and tavily.api_key == "tvly-x"
    assert tavily.base_url == "http://t.example"


def test_a_config_json_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"providers": [
        {"base_url": "http://u", "api_key": "k", "models": [{"id": "m"}]}]}))
    settings = load(tmp_path)
    assert settings.providers_file is not None
    assert settings.config_path == str(tmp_path / "config.json")
    assert "config.json in the working directory read as CONFIG_PATH=" in notes(settings)
    given = load(tmp_path, ["--upstream", "http://other/v1"])
    assert given.providers_file is None and not given.seed_notes
    assert load(tmp_path, dotenv="API_KEY=sk-ant-x\n").providers_file is not None


@pytest.mark.parametrize("entry", migration.ENTRIES, ids=lambda e: e.name)
def test_every_row_of_the_table_is_said_or_stops_the_start(
        tmp_path: Path, entry: migration.Entry) -> None:
    """Each setting of theirs, alone, is either named in the start-up notes or in the
    refusal: none is ignored without a word."""
    sample = {"--timeout": "30", "-w": "2", "DEBUG": "1"}.get(entry.name, "http://x/v1")
    if entry.name.startswith("-"):
        argv = [entry.name] if entry.metavar is None else [entry.name, sample]
        env, path = {}, None
    elif entry.name.isupper():
        argv, env, path = [], {entry.name: sample}, None
    else:
        path = tmp_path / "providers.json"
        path.write_text(json.dumps({entry.name: sample, "providers": [
            {"base_url": "http://u", "api_key": "k", "models": [{"id": "m"}]}]}))
        argv, env = ["--config", str(path)], {}
    stops = isinstance(entry, migration.Refused) or (
        isinstance(entry, migration.NotYet) and entry.stops)
    if stops:
        with pytest.raises(SystemExit, match=re.escape(f"{entry.name} ({entry.seeds}'s")):
            load(tmp_path, argv, env)
    else:
        assert f"{entry.name} ({entry.seeds}'s" in notes(load(tmp_path, argv, env))


def test_claudebridge_client_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROXY_URL", "PROXY_API_KEY", "PROXY_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRIDGE_URL", "http://localhost:8082/api/v1")
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-key")
    monkeypatch.setenv("OPENROUTER_MODEL", "sonnet")
    client = ProxyClient()
    assert (client.url, client.api_key, client.model) == ("http://localhost:8082", "or-key",
                                                          "sonnet")
    monkeypatch.setenv("PROXY_URL", "http://127.0.0.1:9999")  # ours win
    assert ProxyClient().url == "http://127.0.0.1:9999"
