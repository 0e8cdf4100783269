"""Every command of docs/migrating.md, run as written, for each of the five seed projects.

Each "ours" block runs exactly as written, from a copy of the checkout
(``tests/commands.py``), with the seed's own ``.env`` or ``config.json``. The only things
changed are these, because the real ones are elsewhere or shared: upstream URLs
(``https://api.anthropic.com``, ``http://your-endpoint`` and the like) point at fake
upstreams from ``tests/fakes/``; fixed ports (3578, 8000, 8888, 10088) become free ones;
``0.0.0.0`` becomes ``127.0.0.1``. Each "ours" block is also checked to be the seed's own
"theirs" block with only the entry point changed (``TRANSLATIONS``).

claudebridge's server runs the fake Claude Code CLI (tests/fakes/fake-claude) as the
user's CLI.
claudebridge's client and BridgeClient run against our proxy in front of a fake
OpenAI-compatible upstream, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy import __version__
from proxy.app import create_app
from proxy.config import Settings
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
from tests.fakes.backboard_upstream import FakeBackboard

DOC = REPO / "docs" / "migrating.md"
LISTENING = r"llm-dialect-proxy listening on http://127\.0\.0\.1:(\d+)"


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
    "claudebridge-server": [("claudebridge -w 3",
                             "bash scripts/serve --upstream-dialect claude-code --pool-size 3")],
    "claudebridge-server-env": [("claudebridge",
                                 "bash scripts/serve --upstream-dialect claude-code")],
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
    assert "tavily" not in log.lower()  # read as ours, nothing to say
    assert f"provider1 at {upstream} (openai), models glm, minimax" in log
    if name == "claude-proxy-start":
        assert "config.json in the working directory read as CONFIG_PATH=" in log


async def test_bbd2api(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    port = free_port()
    fake = FakeBackboard(["key1", "key2", "key3"])
    await fake.start()
    try:
        (tmp_path / "bbd2api").mkdir()
        env = block(DOC, "env", "bbd2api").replace("https://app.backboard.io/api", fake.base_url)
        (tmp_path / "bbd2api" / ".env").write_text(swapped(env, "http://unused", port))
        async with proxy_from(block(DOC, "ours", "bbd2api-start"), root) as proxy:
            async with aiohttp.ClientSession() as session, session.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    json={"model": "claude-sonnet-4-6", "max_tokens": 20,
                          "messages": [{"role": "user", "content": "say: from backboard"}]}
            ) as response:
                answer = await response.json()
            log = proxy.output
    finally:
        await fake.stop()
    assert answer["content"][0]["text"] == "from backboard", (answer, log)
    for name in ("BBD_API_KEY", "BBD_UPSTREAM"):
        assert f"{name} (bbd2api's, from .env) read as" in log
    (sample,) = block(DOC, "output", "bbd2api-start").splitlines()
    assert sample in log
    assert "key1" not in log and "key2" not in log


@pytest.mark.parametrize("name", ["claudebridge-server", "claudebridge-server-env"])
async def test_claudebridge_server(tmp_path: Path, name: str) -> None:
    """A working proxy whose pool runs the fake Claude Code CLI (CLAUDE_CLI), as a user's
    would run the real one from the PATH."""
    root = checkout(tmp_path)
    port = free_port()
    env = {"PORT": str(port), "CLAUDE_CLI": str(REPO / "tests" / "fakes" / "fake-claude"),
           "HOME": str(tmp_path), "ANTHROPIC_API_KEY": "sk-test",
           "FAKE_CLAUDE_REPLY": "from the CLI"}
    async with proxy_from(block(DOC, "ours", name), root, **env) as proxy:
        answer = await post_json(f"http://127.0.0.1:{port}/api/v1/chat/completions",
                                 {"model": "sonnet",
                                  "messages": [{"role": "user", "content": "hi"}]})
        log = proxy.output
    assert answer["choices"][0]["message"]["content"] == "from the CLI", (answer, log)
    assert "(claude-code)" in log


async def test_claudebridges_w_is_refused_naming_pool_size(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    code, out, err = await run("bash scripts/serve -w 3", root, clean_env())
    assert code == 1, out + err
    assert "-w (claudebridge's, a flag)" in err and "--pool-size N" in err


async def post_json(url: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return await response.json()


async def test_claudebridge_version(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    code, out, err = await run(block(DOC, "ours", "claudebridge-version"), root, clean_env())
    assert (code, out) == (0, f"llm-dialect-proxy {__version__}\n"), err


@contextlib.asynccontextmanager
async def proxy_for_claudebridge() -> Any:
    """Our proxy in front of a fake OpenAI-compatible upstream (the client's commands
    need no CLI behind it), in this event loop; yields (its origin, the fake)."""
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
    "bbd2api-start": test_bbd2api,
    "claudebridge-server": test_claudebridge_server,
    "claudebridge-server-env": test_claudebridge_server,
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
