"""Coming from the five seed projects: their settings read as ours (proxy/migration.py),
and every command of docs/migrating.md run as written.

The first half loads settings as the proxy does (flags, environment, ``.env``, a working
directory) and checks each row of the table: mapped and said, or refused naming the line.

The second half runs each "ours" block of docs/migrating.md exactly as written, from a
copy of the checkout (``tests/commands.py``), with the seed's own ``.env`` or
``config.json``. The only things changed are these, because the real ones are elsewhere
or shared: upstream URLs (``https://api.anthropic.com``, ``http://your-endpoint`` and the
like) point at fake upstreams from ``tests/fakes/``; fixed ports (3578, 8000, 8888, 10088)
become free ones; ``0.0.0.0`` becomes ``127.0.0.1``. Each "ours" block is also checked to
be the seed's own "theirs" block with only the entry point changed (``TRANSLATIONS``).

Where the seed's backend is not built yet (bbd2api's backboard.io; claudebridge's Claude
Code CLI), the test checks the loud refusal instead of a working proxy, and says so.
claudebridge's client and BridgeClient run against our proxy in front of a fake
OpenAI-compatible upstream, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy import __version__, migration
from proxy.app import create_app
from proxy.client import ProxyClient
from proxy.config import Settings, load_settings
from tests.commands import (
    ANSWER,
    REPO,
    AnthropicServer,
    OpenAIServer,
    block,
    checkout,
    clean_env,
    free_port,
    in_process,
    markers,
    run,
    serving,
    start,
)

DOC = REPO / "docs" / "migrating.md"
LISTENING = r"llm-dialect-proxy listening on http://127\.0\.0\.1:(\d+)"


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
    assert settings.upstream_dialect == "anthropic"  # what BASE_URL implies still holds
    assert ("BASE_URL (codingplanproxy's, from .env) not used: ours is given, UPSTREAM_URL "
            "(.env)") in notes(settings, logging.WARNING)


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


@pytest.mark.parametrize(("given", "issue"), [
    ({"dotenv": "BBD_API_KEY=k1,k2\n"}, 10), ({"dotenv": "BBD_UPSTREAM=https://b/api\n"}, 10),
    ({"env": {"THREAD_TTL": "1800"}}, 10), ({"env": {"POOL_SIZE": "3"}}, 11),
    ({"dotenv": "CLAUDE_TIMEOUT=120\n"}, 11)])
def test_settings_of_backends_not_built_yet_stop_the_start(
        tmp_path: Path, given: dict[str, Any], issue: int) -> None:
    with pytest.raises(SystemExit) as stopped:
        load(tmp_path, env=given.get("env"), dotenv=given.get("dotenv", ""))
    message = str(stopped.value)
    name = (given.get("env") or {}).keys() or [given["dotenv"].split("=")[0]]
    (name,) = list(name)
    assert f"{name} (" in message and f"(issue {issue})" in message
    remove = "unset it" if "env" in given else "delete its line from .env"
    assert remove in message


def test_claudebridge_w_is_refused_naming_the_replacement(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"-w \(claudebridge's, a flag\): .*POOL_SIZE.*"
                       r"--workers N starts N processes.*drop the flag"):
        load(tmp_path, ["-w", "3"])


def test_tavily_warns_in_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tavily_key": "tvly-x", "providers": [
        {"base_url": "http://u", "api_key": "k", "models": [{"id": "m"}]}]}))
    settings = load(tmp_path, ["--config", str(config)], env={"TAVILY_API_KEY": "tvly-y"})
    warned = notes(settings, logging.WARNING)
    assert f"tavily_key (claude-proxy's, from {config}) is not used" in warned
    assert "TAVILY_API_KEY (claude-proxy's, from environment) is not used" in warned
    assert "(issue 12)" in warned and "tvly-" not in warned


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


# --- docs/migrating.md, run as written ----------------------------------------------------


# Each "ours" block is the seed's "theirs" block with these replacements, and no other.
TRANSLATIONS = {
    "a2o-quick-start": [("a2o ", "bash scripts/serve ")],
    "a2o-production": [("a2o \\", "bash scripts/serve \\")],
    "a2o-timeout-debug": [("a2o ", "bash scripts/serve ")],
    "codingplanproxy-start": [("cp .env.example .env", "cp ../codingplanproxy/.env .env"),
                              ("python main.py", "bash scripts/serve")],
    "claude-proxy-start": [("go run .", "cp ../claude-proxy/config.json config.json\n"
                                        "bash scripts/serve")],
    "bbd2api-start": [("cp .env.example .env", "cp ../bbd2api/.env .env"),
                      ("python server.py", "bash scripts/serve")],
    "claudebridge-server": [("claudebridge", "bash scripts/serve")],
    "claudebridge-server-env": [("claudebridge", "bash scripts/serve")],
    "claudebridge-version": [("claudebridge", "bash scripts/serve")],
    "claudebridge-client": [("python -m claudebridge.client", "bash scripts/client")],
    "claudebridge-library": [("from claudebridge.client import BridgeClient",
                              "from proxy.client import ProxyClient as BridgeClient")],
}


def test_each_ours_is_theirs_with_the_entry_point_changed() -> None:
    theirs = markers(DOC, "theirs")
    assert theirs and sorted(theirs) == sorted(TRANSLATIONS)
    for name in theirs:
        text = block(DOC, "theirs", name)
        for old, new in TRANSLATIONS[name]:
            assert old in text, (name, old)
            text = text.replace(old, new)
        assert text == block(DOC, "ours", name), name


def swapped(text: str, upstream: str, port: int) -> str:
    """The declared changes (module docstring): upstreams, fixed ports, 0.0.0.0."""
    for real in ("https://api.anthropic.com", "http://your-openai-endpoint",
                 "http://your-endpoint", "https://api.example.com"):
        text = text.replace(real, upstream)
    for fixed in ("3578", "8000", "8888", "10088"):
        text = re.sub(rf"(?<=[ :=]){fixed}\b", str(port), text)
    return text.replace("0.0.0.0", "127.0.0.1")


@contextlib.asynccontextmanager
async def proxy_from(script: str, root: Path, **env: str) -> Any:
    """Run an "ours" block that starts the proxy; yield it once it says it listens."""
    started = await start(script, root, clean_env(**env))
    try:
        await started.wait_for(LISTENING)
        yield started
    finally:
        await started.stop()


async def post(url: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def get(url: str, **headers: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.json()


CLAUDE_CODE = {"model": "claude-sonnet-4-5", "max_tokens": 64,
               "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("name", ["a2o-quick-start", "a2o-production", "a2o-timeout-debug"])
async def test_a2o(tmp_path: Path, name: str) -> None:
    root = checkout(tmp_path)
    port = free_port()
    fake = OpenAIServer()
    async with serving(fake) as upstream:
        script = swapped(block(DOC, "ours", name), upstream, port)
        # The quick start names no port: a2o's default, 3578, which is ours too; a free
        # one here, through PORT, leaving the command as written.
        async with proxy_from(script, root, PORT=str(port)) as proxy:
            status, answer = await post(  # as Claude Code sends it, key passed through
                f"http://127.0.0.1:{port}/v1/messages", CLAUDE_CODE, **{
                    "x-api-key": "any-string", "anthropic-version": "2023-06-01"})
            log = proxy.output
    assert status == 200 and answer["content"][0]["text"] == ANSWER, (answer, log)
    sent = fake.requests[-1]
    assert sent["body"]["model"] == "your-model"
    assert sent["headers"]["authorization"] == "Bearer any-string"
    if name == "a2o-production":
        assert "with 4 worker processes" in log
    if name == "a2o-timeout-debug":
        assert "--timeout (a2o's, a flag) read as READ_TIMEOUT=300" in log
        assert "--debug (a2o's, a flag) read as LOG_LEVEL=DEBUG" in log
        assert " DEBUG proxy.body: " in log  # debug logging is on


async def test_codingplanproxy(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    port = free_port()
    fake = AnthropicServer()
    async with serving(fake) as upstream:
        (tmp_path / "codingplanproxy").mkdir()
        (tmp_path / "codingplanproxy" / ".env").write_text(
            swapped(block(DOC, "env", "codingplanproxy"), upstream, port))
        async with proxy_from(block(DOC, "ours", "codingplanproxy-start"), root) as proxy:
            code, out, err = await run(swapped(block(DOC, "ours", "codingplanproxy-curl"),
                                               upstream, port), root, clean_env())
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{port}/v1/models",
                    headers={"Authorization": "Bearer my-proxy-secret"}) as listed:
                models = (await listed.json())["data"]
            log = proxy.output
    assert code == 0, err
    answer = json.loads(out)
    assert answer["choices"][0]["message"]["content"] == ANSWER, (answer, log)
    sent = fake.requests[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-api03-your-key-here"
    assert sent["body"]["model"] == "claude-sonnet-4-20250514"
    assert sent["body"]["max_tokens"] == 16384
    assert "You are a helpful assistant." in json.dumps(sent["body"]["system"])
    assert [m["id"] for m in models] == ["claude-sonnet-4-20250514"]
    for name in ("BASE_URL", "API_KEY", "MODEL_NAME"):
        assert f"{name} (codingplanproxy's, from .env) read as" in log
    (sample,) = block(DOC, "output", "codingplanproxy-start").splitlines()  # the doc's
    assert swapped(sample, upstream, port) in log
    assert "sk-ant-api03" not in log


@pytest.mark.parametrize("name", ["claude-proxy-start", "claude-proxy-config-path"])
async def test_the_go_claude_proxy(tmp_path: Path, name: str) -> None:
    root = checkout(tmp_path)
    port = free_port()
    fake = OpenAIServer()
    async with serving(fake) as upstream:
        (tmp_path / "claude-proxy").mkdir()
        (tmp_path / "claude-proxy" / "config.json").write_text(
            swapped(block(DOC, "env", "claude-proxy"), upstream, port))
        async with proxy_from(block(DOC, "ours", name), root) as proxy:
            code, out, err = await run(swapped(block(DOC, "ours", "claude-proxy-curl"),
                                               upstream, port), root, clean_env())
            auth = {"Authorization": "Bearer your-proxy-api-key"}
            listed = await get(f"http://127.0.0.1:{port}/v1/models", **auth)
            health = await get(f"http://127.0.0.1:{port}/health")
            log = proxy.output
    assert code == 0, err
    assert json.loads(out)["content"][0]["text"] == ANSWER, (out, log)
    sent = fake.requests[-1]
    assert sent["body"]["model"] == "deepseek-chat"  # the remote_id of "glm"
    assert sent["headers"]["authorization"] == "Bearer your-upstream-api-key"
    assert [(m["id"], m["display_name"]) for m in listed["data"]] == [
        ("glm", "glm4.7"), ("minimax", "minimax2.1")]
    assert health["health"] == "ok"
    assert "tavily_key (claude-proxy's, from" in log and "(issue 12)" in log
    assert f"provider1 at {upstream} (openai), models glm, minimax" in log
    if name == "claude-proxy-start":
        assert "config.json in the working directory read as CONFIG_PATH=" in log


async def test_bbd2api_is_refused_until_the_backboard_backend_lands(tmp_path: Path) -> None:
    """NOT a working proxy: backboard.io as a backend is not built yet (issue 10), so the
    documented start must stop at once, naming each backboard setting."""
    root = checkout(tmp_path)
    (tmp_path / "bbd2api").mkdir()
    (tmp_path / "bbd2api" / ".env").write_text(
        swapped(block(DOC, "env", "bbd2api"), "http://unused", free_port()))
    code, out, err = await run(block(DOC, "ours", "bbd2api-start"), root, clean_env())
    assert code == 1, out + err
    assert "listening" not in err
    for name in ("BBD_API_KEY", "BBD_UPSTREAM", "THREAD_TTL"):
        assert f"{name} (bbd2api's, from .env): the backboard.io backend is not built yet " \
               f"(issue 10); delete its line from .env" in err
    shown = block(DOC, "output", "bbd2api-start").splitlines()
    assert [line for line in shown if line.strip() != "..."] == err.splitlines()[:2]


@pytest.mark.parametrize("name", ["claudebridge-server", "claudebridge-server-env"])
async def test_claudebridge_server_is_refused_until_the_cli_backend_lands(
        tmp_path: Path, name: str) -> None:
    """NOT a working proxy: the Claude Code CLI as a backend is not built yet (issue 11)."""
    root = checkout(tmp_path)
    code, out, err = await run(block(DOC, "ours", name), root, clean_env())
    assert code == 1, out + err
    expected = (["-w (claudebridge's, a flag)"] if name == "claudebridge-server" else
                ["POOL_SIZE (claudebridge's, from environment)",
                 "CLAUDE_TIMEOUT (claudebridge's, from environment)"])
    for said in expected:
        assert said in err
    assert "issue 11" in err


async def test_claudebridge_version(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    code, out, err = await run(block(DOC, "ours", "claudebridge-version"), root, clean_env())
    assert (code, out) == (0, f"llm-dialect-proxy {__version__}\n"), err


@contextlib.asynccontextmanager
async def proxy_for_claudebridge() -> Any:
    """Our proxy in front of a fake OpenAI-compatible upstream (the CLI backend is not
    built yet), in this event loop; yields (its origin, the fake)."""
    fake = OpenAIServer()
    async with serving(fake) as upstream:
        app = create_app(replace(Settings(), upstream_url=upstream + "/v1",
                                 model="upstream-model"))
        async with in_process(app) as origin:
            yield origin, fake


async def test_claudebridge_client_commands(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    lines = block(DOC, "ours", "claudebridge-client").splitlines()
    async with proxy_for_claudebridge() as (origin, fake):
        env = clean_env(BRIDGE_URL=origin)  # their variable, as their shell has it
        for line in lines:
            code, out, err = await run(line, root, env)
            assert code == 0, (line, err)
            assert out == ANSWER + "\n", (line, out, err)
            assert "note: BRIDGE_URL (claudebridge's) read as PROXY_URL" in err
        prompts = [r["body"]["messages"][-1]["content"] for r in fake.requests]
    assert prompts[:4] == ["What is Python?", "Hello", "Explain decorators", "Quick answer"]
    assert prompts[4:] == ["Hello"] * 3 and len(prompts) == 7


async def test_bridge_client_code_runs_on_proxy_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile(block(DOC, "ours", "claudebridge-library"), "docs/migrating.md", "exec")
    printed = io.StringIO()

    def execute() -> None:
        with contextlib.redirect_stdout(printed):
            exec(code, {"__name__": "__snippet__"})

    async with proxy_for_claudebridge() as (origin, fake):
        monkeypatch.setenv("BRIDGE_URL", origin)
        for name in ("PROXY_URL", "PROXY_API_KEY", "PROXY_MODEL", "OPENROUTER_MODEL"):
            monkeypatch.delenv(name, raising=False)
        await asyncio.to_thread(execute)
    # complete_sync, then complete, then the stream's pieces
    assert printed.getvalue() == f"{ANSWER}\n{ANSWER}\n{ANSWER}"
    prompts = [r["body"]["messages"][-1]["content"] for r in fake.requests]
    assert prompts == ["Hello!", "Hello!", "Tell me a story"]


# Which test runs each "ours" block of the doc.
RUNNERS = {
    "a2o-quick-start": test_a2o, "a2o-production": test_a2o, "a2o-timeout-debug": test_a2o,
    "codingplanproxy-start": test_codingplanproxy,
    "codingplanproxy-curl": test_codingplanproxy,
    "claude-proxy-start": test_the_go_claude_proxy,
    "claude-proxy-config-path": test_the_go_claude_proxy,
    "claude-proxy-curl": test_the_go_claude_proxy,
    "bbd2api-start": test_bbd2api_is_refused_until_the_backboard_backend_lands,
    "claudebridge-server": test_claudebridge_server_is_refused_until_the_cli_backend_lands,
    "claudebridge-server-env": test_claudebridge_server_is_refused_until_the_cli_backend_lands,
    "claudebridge-version": test_claudebridge_version,
    "claudebridge-client": test_claudebridge_client_commands,
    "claudebridge-library": test_bridge_client_code_runs_on_proxy_client,
}


def test_every_ours_block_is_run() -> None:
    names = markers(DOC, "ours")
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(RUNNERS)
    source = Path(__file__).read_text(encoding="utf-8")
    for name, runner in RUNNERS.items():
        body = source.split(f"def {runner.__name__}(")[1].split("\ndef ")[0]
        assert f'"{name}"' in body or "name" in body, (name, runner.__name__)
