"""Every snippet in docs/clients.md, tried against the running proxy (127.0.0.1 only).

Each snippet is read from the doc itself (the fenced block after ``<!-- test: NAME -->``),
with only ``http://127.0.0.1:3578`` swapped for the test proxy's origin, and run against
the real app on a real port in front of fake upstreams: a fake OpenAI-compatible server
standing in for DeepSeek, and a fake Anthropic API. The ``bash scripts/serve …`` lines go
through the proxy's own settings loader, with only the upstream address swapped.

* **Run as written:** the official ``anthropic`` and ``openai`` SDK snippets (executed);
  LiteLLM, the real package (the SDK snippet executed, and its ``litellm.completion``
  arguments also sent through ``litellm.acompletion``, streaming and not; the
  ``config.yaml`` ``model_list`` loaded into ``litellm.Router``, which is what LiteLLM's
  proxy server routes with: the server itself, ``litellm[proxy]``, is not installed);
  Claude Code, the real CLI, with the doc's exported variables. LiteLLM pins ``openai<3``,
  so it runs in its own interpreter (``.venv-litellm``, or ``$LITELLM_PYTHON``) through
  ``tests/fixtures/clients/litellm_driver.py``, which sets ``LITELLM_LOCAL_MODEL_COST_MAP``
  so LiteLLM never tries to fetch its price list from the internet.
* **Replays (not the real clients):** Continue and Open WebUI cannot run here, so their
  tests send the HTTP requests their source builds, to the URLs the doc configures.
  Continue (``packages/openai-adapters``): the ``openai`` adapter streams through the
  openai Node SDK with ``stream_options.include_usage``; the ``anthropic`` adapter posts
  to ``new URL("messages", apiBase)`` with ``x-api-key``, ``anthropic-beta:
  prompt-caching-2024-07-31`` and ``cache_control`` on the system, the last tool and the
  last user text. Open WebUI (``backend/open_webui/routers/openai.py``, ``tasks.py``):
  ``GET {url}/models``, then ``POST {url}/chat/completions`` with ``stream: true`` and
  ``stream_options.include_usage`` (recent versions also mark the last message's text
  with ``cache_control``), and the title request, ``stream: false`` with
  ``max_completion_tokens``.

Without LiteLLM, PyYAML or the Claude Code CLI those tests skip, unless ``CI`` is set:
then they fail, since CI must install them.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web

from proxy.app import create_app, server_options
from proxy.config import Settings, load_settings
from tests.e2e.test_claude_code_cli import TIMEOUT
from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, JSONResponse, Stream
from tests.support import (
    check_anthropic_stream,
    check_openai_stream,
    parse_anthropic_sse,
    unavailable,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "clients.md"
DOC_ORIGIN = "http://127.0.0.1:3578"
ANSWER = "Hello there."
PIECES = ["Hello", " there", "."]


# --- the doc's snippets ------------------------------------------------------------------


def snippet(name: str) -> str:
    """The fenced block right after ``<!-- test: NAME -->`` in docs/clients.md."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- test: {re.escape(name)} -->\s*```[\w-]*\n(.*?)```", text, re.S)
    assert found, f"docs/clients.md has no snippet marked <!-- test: {name} -->"
    return found.group(1)


def at(text: str, origin: str) -> str:
    """The snippet pointed at the test proxy instead of 127.0.0.1:3578."""
    assert DOC_ORIGIN in text, text
    return text.replace(DOC_ORIGIN, origin)


def serve_settings(block: str, *, swap: dict[str, str] | None = None) -> Settings:
    """What ``bash scripts/serve ARGS`` in ``block`` starts with: its flags through the
    proxy's own loader (no environment, no .env); ``swap`` replaces argument values."""
    (line,) = [ln for ln in block.splitlines() if ln.startswith("bash scripts/serve ")]
    args = [(swap or {}).get(a, a) for a in shlex.split(line, comments=True)[2:]]
    return load_settings([*args, "--env-file", os.devnull], environ={})


def exported(block: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of a shell block (comments dropped)."""
    env: dict[str, str] = {}
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


def litellm_calls() -> list[dict[str, Any]]:
    """The keyword arguments of each ``litellm.completion(…)`` in the SDK snippet."""
    calls = [node for node in ast.walk(ast.parse(snippet("litellm-sdk")))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "litellm.completion"]
    return [{kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
            for call in sorted(calls, key=lambda call: call.lineno)]


def litellm_path(model: str) -> str:
    """Where LiteLLM sends a model: ``openai/…`` to chat completions, ``anthropic/…`` to
    messages."""
    return "/v1/chat/completions" if model.startswith("openai/") else "/v1/messages"


async def run_snippet(name: str, origin: str) -> dict[str, Any]:
    """Execute a Python snippet as written (synchronous clients: in a thread, so the proxy
    on this loop keeps serving); returns its globals."""
    code = compile(at(snippet(name), origin), f"docs/clients.md <{name}>", "exec")
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    await asyncio.to_thread(exec, code, namespace)
    return namespace


def need(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(f"{module} is not installed: pip install -e '.[test]'")


# --- upstreams that answer the way they were asked -------------------------------------


class OpenAIServer(FakeOpenAIUpstream):
    """A fake OpenAI-compatible upstream: a stream when asked for one, else one JSON body."""

    def _next_scenario(self) -> Any:
        body = self.requests[-1]["body"]
        if isinstance(body, dict) and body.get("stream"):
            return Stream(fake_openai.text_stream(PIECES))
        return JSONResponse(fake_openai.chat_completion(ANSWER))


class AnthropicServer(FakeAnthropicUpstream):
    """A fake Anthropic API (checking requests as the real one does), answering in kind."""

    def _next_scenario(self) -> Any:
        body = self.requests[-1]["body"]
        if isinstance(body, dict) and body.get("stream"):
            return Stream(fake_anthropic.text_stream(PIECES))
        return JSONResponse(fake_anthropic.message(ANSWER))


@dataclass
class Proxy:
    origin: str
    upstream: FakeOpenAIUpstream  # either fake; the Anthropic one subclasses the other
    seen: list[tuple[str, str, int]]  # (method, path, status) of each answered request

    def last(self) -> dict[str, Any]:
        assert self.upstream.requests, "nothing reached the upstream"
        return self.upstream.requests[-1]


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[str, list[tuple[str, str, int]]]]:
    """The real app on a free 127.0.0.1 port; yields its origin and the requests it saw."""
    app = create_app(replace(settings, host="127.0.0.1", port=0))
    seen: list[tuple[str, str, int]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        seen.append((request.method, request.path, response.status))

    app.on_response_prepare.append(record)
    runner = web.AppRunner(app, shutdown_timeout=1.0, **server_options())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def started(fake: FakeOpenAIUpstream) -> AsyncIterator[str]:
    base = await fake.start()
    try:
        yield base
    finally:
        await fake.stop()


@pytest.fixture(params=["deepseek", "anthropic"])
async def proxy(request: pytest.FixtureRequest) -> AsyncIterator[Proxy]:
    """The proxy as the doc starts it in front of DeepSeek (``--upstream … --model
    deepseek-chat --api-key …``, upstream swapped for a fake), or in front of the
    Anthropic API as the README starts it (``--upstream-dialect anthropic --api-key
    sk-ant-… --model …``)."""
    if request.param == "deepseek":
        fake: FakeOpenAIUpstream = OpenAIServer()
        async with started(fake) as base:
            settings = replace(serve_settings(snippet("claude-code")), upstream_url=base)
            async with running(settings) as (origin, seen):
                yield Proxy(origin, fake, seen)
    else:
        fake = AnthropicServer()
        async with started(fake) as base:
            settings = Settings(upstream_url=base, upstream_dialect="anthropic",
                                upstream_api_key="sk-ant-test-key", model="claude-sonnet-5-5")
            async with running(settings) as (origin, seen):
                yield Proxy(origin, fake, seen)


def upstream_model(proxy: Proxy, asked: str) -> str:
    """The model the upstream should receive when a client asks for ``asked``: DeepSeek's
    ``--model`` replaces every name; an Anthropic upstream gets the client's own."""
    return "deepseek-chat" if isinstance(proxy.upstream, OpenAIServer) else asked


# --- the official SDKs -------------------------------------------------------------------


async def test_anthropic_sdk_snippet(proxy: Proxy) -> None:
    done = await run_snippet("anthropic-sdk", proxy.origin)
    assert done["message"].content[0].text == ANSWER
    assert ("POST", "/v1/messages", 200) in proxy.seen
    assert proxy.last()["body"]["model"] == upstream_model(proxy, "claude-sonnet-5-5")


async def test_openai_sdk_snippet(proxy: Proxy) -> None:
    done = await run_snippet("openai-sdk", proxy.origin)
    assert done["completion"].choices[0].message.content == ANSWER
    assert ("POST", "/v1/chat/completions", 200) in proxy.seen
    assert proxy.last()["body"]["model"] == upstream_model(proxy, "deepseek-chat")


def test_sdks_read_the_base_urls_the_doc_names(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        value = re.search(rf"`{name}=(\S+?)`", text)
        assert value, name
        monkeypatch.setenv(name, value.group(1))
    with anthropic.Anthropic(api_key="x") as claude, openai.OpenAI(api_key="x") as gpt:
        assert str(claude.base_url).rstrip("/") == DOC_ORIGIN
        assert str(gpt.base_url).rstrip("/") == DOC_ORIGIN + "/v1"


# --- LiteLLM (in its own interpreter) -------------------------------------------------


DRIVER = REPO / "tests" / "fixtures" / "clients" / "litellm_driver.py"


@pytest.fixture(scope="module")
def litellm_python() -> str:
    """An interpreter with litellm: $LITELLM_PYTHON, .venv-litellm (scripts/setup test),
    or this one if litellm is installed here."""
    for candidate in (os.environ.get("LITELLM_PYTHON"),
                      str(REPO / ".venv-litellm" / "bin" / "python")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if importlib.util.find_spec("litellm") is not None:
        return sys.executable
    unavailable("litellm not found: set LITELLM_PYTHON, or run `bash scripts/setup test` "
                "(it makes .venv-litellm).")


async def litellm_jobs(python: str, jobs: list[dict[str, Any]]) -> list[dict[str, str]]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = await asyncio.create_subprocess_exec(
        python, str(DRIVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(jobs).encode()), 120)
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("RESULT: ")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{out.decode()}\n{err.decode()}"
    results: list[dict[str, str]] = json.loads(lines[-1].removeprefix("RESULT: "))
    return results


async def test_litellm(litellm_python: str, proxy: Proxy) -> None:
    """The SDK snippet as written; its two ``litellm.completion`` calls' arguments through
    ``litellm.acompletion``, whole and streamed; the config.yaml ``model_list`` through
    ``litellm.Router`` (the LiteLLM proxy server's router), each model whole and streamed."""
    calls = litellm_calls()
    assert [call["model"].split("/")[0] for call in calls] == ["openai", "anthropic"]
    jobs: list[dict[str, Any]] = [{"snippet": at(snippet("litellm-sdk"), proxy.origin)}]
    paths = [litellm_path(call["model"]) for call in calls]
    asked = []
    for stream in (False, True):
        for kwargs in calls:
            jobs.append({"acompletion": {**kwargs, "api_base": at(kwargs["api_base"],
                                                                  proxy.origin)},
                         "stream": stream})
            paths.append(litellm_path(kwargs["model"]))
            asked.append(kwargs["model"].split("/", 1)[1])
    yaml = need("yaml")
    model_list = yaml.safe_load(at(snippet("litellm-config"), proxy.origin))["model_list"]
    for stream in (False, True):
        for entry in model_list:
            jobs.append({"router": model_list, "model": entry["model_name"], "stream": stream})
            paths.append(litellm_path(entry["litellm_params"]["model"]))
    results = await litellm_jobs(litellm_python, jobs)
    assert len(results) == len(jobs)
    assert results[0] == {"text": f"{ANSWER}\n{ANSWER}\n"}, results[0]  # it prints both
    failed = [(job, result) for job, result in zip(jobs[1:], results[1:], strict=True)
              if result != {"text": ANSWER}]
    assert not failed, failed
    assert proxy.seen == [("POST", path, 200) for path in paths]
    models = [r["body"]["model"] for r in proxy.upstream.requests]
    assert models[len(calls):len(calls) + len(asked)] == [
        upstream_model(proxy, name) for name in asked], models


# --- Continue (replayed) -----------------------------------------------------------------


CONTINUE_SYSTEM = "You are a helpful coding assistant. Always reply in Markdown."
CONTINUE_TOOL = {"type": "function", "function": {
    "name": "read_file", "description": "Use this tool to read the contents of a file.",
    "parameters": {"type": "object", "required": ["filepath"],
                   "properties": {"filepath": {"type": "string",
                                               "description": "The path of the file"}}}}}


def continue_models(origin: str) -> dict[str, dict[str, Any]]:
    yaml = need("yaml")
    config = yaml.safe_load(at(snippet("continue-config"), origin))
    assert config["schema"] == "v1" and config["name"] and config["version"]
    return {model["provider"]: model for model in config["models"]}


@pytest.mark.parametrize("agent", [False, True], ids=["chat", "agent-with-tools"])
async def test_continue_openai_provider_replay(proxy: Proxy, agent: bool) -> None:
    """REPLAY of Continue's ``openai`` provider: the openai Node SDK at ``apiBase``, body
    from ``toChatBody`` + ``modifyChatBody`` (undefined fields omitted by JSON)."""
    model = continue_models(proxy.origin)["openai"]
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": CONTINUE_SYSTEM},
                     {"role": "user", "content": "Explain this function"}],
        "model": model["model"], "max_tokens": 4096, "stream": True,
        "stream_options": {"include_usage": True}}
    if agent:
        body["tools"] = [CONTINUE_TOOL]
    headers = {"Authorization": f"Bearer {model['apiKey']}", "Content-Type": "application/json",
               "Accept": "application/json", "User-Agent": "OpenAI/JS 5.23.2",
               "X-Stainless-Lang": "js", "X-Stainless-Retry-Count": "0"}
    async with aiohttp.ClientSession() as session:
        # the openai SDK joins like this: baseURL without its trailing slash + path
        base = model["apiBase"].rstrip("/")
        async with session.post(f"{base}/chat/completions", json=body,
                                headers=headers) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/event-stream"
            raw = await response.read()
        async with session.get(f"{base}/models", headers=headers) as listed:
            assert listed.status == 200  # Continue's model list (openai.models.list())
            assert [m["id"] for m in (await listed.json())["data"]]
    chunks = check_openai_stream(raw, include_usage=True)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == ANSWER
    assert ("POST", "/v1/chat/completions", 200) in proxy.seen
    assert proxy.last()["body"]["model"] == upstream_model(proxy, "deepseek-chat")


@pytest.mark.parametrize("agent", [False, True], ids=["chat", "agent-with-tools"])
async def test_continue_anthropic_provider_replay(proxy: Proxy, agent: bool) -> None:
    """REPLAY of Continue's ``anthropic`` provider: ``POST new URL("messages", apiBase)``,
    the ``systemAndTools`` caching strategy, ``max_tokens`` from the completion options."""
    model = continue_models(proxy.origin)["anthropic"]
    api_base = model["apiBase"] if model["apiBase"].endswith("/") else model["apiBase"] + "/"
    # the adapter adds the slash, then resolves "messages" against it (JS new URL)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Explain this function",
             "cache_control": {"type": "ephemeral"}}]}],
        "system": [{"type": "text", "text": CONTINUE_SYSTEM,
                    "cache_control": {"type": "ephemeral"}}],
        "max_tokens": 4096, "model": model["model"], "stream": True}
    if agent:
        function = CONTINUE_TOOL["function"]
        body["tools"] = [{"name": function["name"], "description": function["description"],
                          "input_schema": function["parameters"],
                          "cache_control": {"type": "ephemeral"}}]
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "anthropic-version": "2023-06-01", "x-api-key": model["apiKey"],
               "anthropic-beta": "prompt-caching-2024-07-31"}
    async with aiohttp.ClientSession() as session, session.post(
            urljoin(api_base, "messages"), json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        raw = await response.read()
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames)
    text = "".join(data["delta"].get("text", "") for name, data in frames
                   if name == "content_block_delta")
    assert text == ANSWER
    assert ("POST", "/v1/messages", 200) in proxy.seen
    assert proxy.last()["body"]["model"] == upstream_model(proxy, "claude-sonnet-5-5")


# --- Open WebUI (replayed) ---------------------------------------------------------------


def open_webui_connection(origin: str) -> tuple[str, str]:
    block = at(snippet("open-webui"), origin)
    env = dict(word.split("=", 1) for word in shlex.split(block, comments=True) if "=" in word)
    return env["OPENAI_API_BASE_URL"].rstrip("/"), env["OPENAI_API_KEY"]


@pytest.mark.parametrize("recent", [False, True], ids=["plain", "cache-control-marker"])
async def test_open_webui_replay(proxy: Proxy, recent: bool) -> None:
    """REPLAY of Open WebUI's requests to an OpenAI connection: the model list, one chat
    turn streamed (``stream_options.include_usage`` added by its backend; recent versions
    also put ``cache_control`` on the last message's text), then the title request."""
    url, key = open_webui_connection(proxy.origin)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/models", headers=headers) as listed:
            assert listed.status == 200
            models = [m["id"] for m in (await listed.json())["data"]]
        assert models, "Open WebUI would show no model"
        last: dict[str, Any] = {"role": "user", "content": "Hi! What can you do?"}
        if recent:
            last["content"] = [{"type": "text", "text": last["content"],
                                "cache_control": {"type": "ephemeral"}}]
        chat = {"stream": True, "model": models[0],
                "messages": [{"role": "system", "content": "You are a helpful assistant."},
                             last],
                "stream_options": {"include_usage": True}}
        async with session.post(f"{url}/chat/completions", data=json.dumps(chat),
                                headers=headers) as response:
            assert response.status == 200, await response.text()
            assert "text/event-stream" in response.headers["Content-Type"]
            raw = await response.read()
        chunks = check_openai_stream(raw, include_usage=True)
        assert "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c["choices"]) == ANSWER
        title = {"model": models[0], "stream": False, "max_completion_tokens": 1000,
                 "messages": [{"role": "user", "content": "### Task:\nGenerate a concise, "
                               "3-5 word title with an emoji summarizing the chat history."
                               "\n### Chat History:\n<chat_history>\nUSER: Hi! What can you "
                               "do?\nASSISTANT: Hello there.\n</chat_history>"}]}
        async with session.post(f"{url}/chat/completions", data=json.dumps(title),
                                headers=headers) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
    assert answer["choices"][0]["message"]["content"] == ANSWER
    assert [p for _, p, _ in proxy.seen] == ["/v1/models", "/v1/chat/completions",
                                             "/v1/chat/completions"]
    assert proxy.last()["body"]["model"] == upstream_model(proxy, models[0])


# --- Claude Code (the real CLI) ----------------------------------------------------------


async def run_claude(claude: str, env: dict[str, str], home: Path,
                     *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """``claude -p … --output-format stream-json`` with exactly the doc's variables (plus
    a throwaway HOME, PATH, and one retry so a failure ends quickly)."""
    home.mkdir(parents=True, exist_ok=True)
    full = {**env, "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CLAUDE_CODE_MAX_RETRIES": "1"}
    proc = await asyncio.create_subprocess_exec(
        claude, "-p", "say hi", "--output-format", "stream-json", "--verbose", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=full, cwd=home, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode or 0, lines, err.decode()


def result_of(lines: list[dict[str, Any]], stderr: str) -> dict[str, Any]:
    results = [line for line in lines if line.get("type") == "result"]
    assert len(results) == 1, f"{lines}\n{stderr}"
    return results[0]


async def test_claude_code_with_the_docs_variables(claude_bin: str, tmp_path: Path) -> None:
    """The DeepSeek block: serve flags and exported variables as written."""
    block = snippet("claude-code")
    env = exported(block)
    upstream = OpenAIServer()
    async with started(upstream) as base:
        settings = replace(serve_settings(block), upstream_url=base)
        async with running(settings) as (origin, seen):
            env["ANTHROPIC_BASE_URL"] = at(env["ANTHROPIC_BASE_URL"], origin)
            code, lines, stderr = await run_claude(claude_bin, env, tmp_path,
                                                   "--debug-file", str(tmp_path / "debug.log"))
    why = f"rc={code}\n{lines}\n{stderr}\nseen={seen}"
    assert code == 0 and result_of(lines, stderr)["result"] == ANSWER, why
    assert len(upstream.requests) == 1, why  # no title call, no fallback
    sent = upstream.requests[0]
    assert sent["headers"]["authorization"] == "Bearer sk-..."  # the --api-key, not the client's
    body = sent["body"]
    assert body["model"] == "deepseek-chat"
    assert body["max_tokens"] == int(env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"])
    names = {tool["function"]["name"] for tool in body["tools"]}
    assert "WebFetch" in names, names  # ENABLE_TOOL_SEARCH=false: every tool up front
    # CLAUDE_CODE_AUTO_COMPACT_WINDOW took effect (2.1.330 logs "effectiveWindow=119808"
    # for 128000; without it, about 980000 for a model it does not know)
    windows = re.findall(r"effectiveWindow=(\d+)", (tmp_path / "debug.log").read_text())
    assert windows, "no autocompact line in the CLI's debug log"
    assert all(int(w) <= int(env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"]) for w in windows), windows


async def test_claude_code_with_a_providers_file(claude_bin: str, tmp_path: Path) -> None:
    """The providers-file block: the README's example file (ids ``ds`` and ``glm``, proxy
    key ``ak``) on two fakes; ANTHROPIC_MODEL=ds reaches deepseek-chat, and ``--model
    haiku`` (ANTHROPIC_DEFAULT_HAIKU_MODEL=glm) reaches glm-4.7."""
    block = snippet("claude-code-providers")
    env = exported(block)
    deepseek, glm = OpenAIServer(), OpenAIServer()
    async with started(deepseek) as ds_base, started(glm) as glm_base:
        config = {"ak": env["ANTHROPIC_AUTH_TOKEN"], "providers": [
            {"name": "deepseek", "base_url": ds_base, "api_key": "sk-a,sk-b",
             "models": [{"id": "ds", "display_name": "DeepSeek", "remote_id": "deepseek-chat",
                         "max_tokens": 8192, "fallbacks": ["glm"]}]},
            {"name": "glm", "base_url": glm_base, "api_keys": ["g1"],
             "models": [{"id": "glm", "remote_id": "glm-4.7"}]}],
            "aliases": {"opus": "ds", "sonnet": "ds", "haiku": "glm"}, "default_model": "glm"}
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        settings = serve_settings(block, swap={"config.json": str(path)})
        async with running(settings) as (origin, seen):
            env["ANTHROPIC_BASE_URL"] = at(env["ANTHROPIC_BASE_URL"], origin)
            code, lines, stderr = await run_claude(claude_bin, env, tmp_path / "main")
            why = f"rc={code}\n{lines}\n{stderr}\nseen={seen}"
            assert code == 0 and result_of(lines, stderr)["result"] == ANSWER, why
            assert [r["body"]["model"] for r in deepseek.requests] == ["deepseek-chat"], why
            assert glm.requests == [], why
            code, lines, stderr = await run_claude(claude_bin, env, tmp_path / "haiku",
                                                   "--model", "haiku")
            why = f"rc={code}\n{lines}\n{stderr}\nseen={seen}"
            assert code == 0 and result_of(lines, stderr)["result"] == ANSWER, why
            assert [r["body"]["model"] for r in glm.requests] == ["glm-4.7"], why
            assert len(deepseek.requests) == 1, why
            async with aiohttp.ClientSession() as session, session.post(  # "ak" is enforced
                    f"{origin}/v1/messages", headers={"x-api-key": "wrong"},
                    json={"model": "ds", "max_tokens": 5, "messages": []}) as refused:
                assert refused.status == 401
    assert deepseek.requests[0]["headers"]["authorization"] in ("Bearer sk-a", "Bearer sk-b")
    assert glm.requests[0]["headers"]["authorization"] == "Bearer g1"


def test_every_marked_snippet_has_a_test() -> None:
    marked = re.findall(r"<!-- test: ([\w-]+) -->", DOC.read_text(encoding="utf-8"))
    source = Path(__file__).read_text(encoding="utf-8")
    assert marked and len(marked) == len(set(marked)), marked
    missing = [name for name in marked if f'"{name}"' not in source]
    assert not missing, f"snippets nobody runs: {missing}"
