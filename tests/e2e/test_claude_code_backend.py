"""The Claude Code CLI as a backend, end to end: the official SDKs against the real app on
a real port, whose pool runs the fake CLI (tests/fakes/fake-claude) as real child
processes. The real CLI as the backend is in test_claude_code_backend_real.py."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

FAKE = str(Path(__file__).parents[1] / "fakes" / "fake-claude")
Start = Callable[..., Awaitable[str]]


@pytest.fixture
def record(tmp_path: Path) -> Path:
    folder = tmp_path / "record"
    folder.mkdir()
    return folder


@pytest.fixture
async def cli_proxy(start_proxy: Any, tmp_path: Path, record: Path,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    """The proxy with the claude-code backend; the fake CLI's settings go in the proxy's
    environment, which its children get (as a user's ANTHROPIC_API_KEY would)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-cli")
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))

    async def start(**settings: Any) -> str:
        for name, value in settings.pop("env", {}).items():
            monkeypatch.setenv(name, value)
        settings = {"upstream_dialect": "claude-code", "claude_cli": FAKE, "pool_size": 2,
                    **settings}
        return await start_proxy(**settings)

    yield start


def stdin_of(record: Path) -> list[str]:
    """Every user turn the fake CLIs got, as text."""
    turns = []
    for path in record.iterdir():
        for line in path.read_text().splitlines()[1:]:
            entry = json.loads(line).get("stdin") or {}
            if entry.get("type") == "user":
                turns.append(json.dumps(entry["message"]["content"]))
    return turns


async def test_tokens_stream_in_several_deltas(cli_proxy: Start) -> None:
    url = await cli_proxy(env={"FAKE_CLAUDE_REPLY": "Hello from the CLI backend.",
                               "FAKE_CLAUDE_DELTA_SECONDS": "0.02"})
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="sonnet", stream=True, messages=[{"role": "user", "content": "hi"}])
        pieces = [c.choices[0].delta.content async for c in stream
                  if c.choices and c.choices[0].delta.content]
        assert "".join(pieces) == "Hello from the CLI backend." and len(pieces) > 1
        done = await client.chat.completions.create(
            model="claude-3.5-sonnet", messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == "Hello from the CLI backend."
    assert done.model == "claude-3.5-sonnet"


async def test_anthropic_clients_too(cli_proxy: Start) -> None:
    url = await cli_proxy(env={"FAKE_CLAUDE_REPLY": "ok"})
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x") as client:
        message = await client.messages.create(
            model="opus", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "ok" and message.stop_reason == "end_turn"


async def test_a_client_tool_round_trip_with_parallel_calls(cli_proxy: Start,
                                                            record: Path) -> None:
    calls = {"calls": [{"tool": "get_weather", "args": {"city": "Paris"}},
                       {"tool": "get_time", "args": {"zone": "CET"}}]}
    url = await cli_proxy(env={"FAKE_CLAUDE_REPLY": "Checking. " + json.dumps(calls)})
    tools = [{"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {arg: {"type": "string"}}, "required": [arg]}}}
             for name, arg in (("get_weather", "city"), ("get_time", "zone"))]
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        first = await client.chat.completions.create(
            model="sonnet", tools=tools, messages=[{"role": "user", "content": "Paris?"}])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        got = [(c.function.name, json.loads(c.function.arguments))
               for c in choice.message.tool_calls or []]
        assert got == [("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})]
        history = [{"role": "user", "content": "Paris?"}, choice.message.model_dump(),
                   *({"role": "tool", "tool_call_id": c.id, "content": f"result {n}"}
                     for n, c in enumerate(choice.message.tool_calls or []))]
        await client.chat.completions.create(model="sonnet", tools=tools, messages=history)
    second = [turn for turn in stdin_of(record) if "result 0" in turn]
    assert len(second) == 1  # the whole history, flattened into one turn
    assert "result 1" in second[0] and "get_weather" in second[0] and "Paris?" in second[0]


async def test_two_conversations_never_see_each_other(cli_proxy: Start, record: Path) -> None:
    url = await cli_proxy()
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x") as client:
        await asyncio.gather(*(client.messages.create(
            model="haiku", max_tokens=10, messages=[{"role": "user", "content": f"secret-{n}"}])
            for n in range(2)))
    per_process = [p.read_text() for p in record.iterdir() if "secret-" in p.read_text()]
    assert len(per_process) == 2
    assert all(text.count("secret-") == 1 for text in per_process)


@pytest.mark.parametrize(("mode", "status", "words"), [
    ("rate_limit", 429, "limit"), ("not_logged_in", 503, "claude login"),
    ("error", 400, "")])
async def test_cli_failures_are_errors_in_the_clients_dialect(
        cli_proxy: Start, mode: str, status: int, words: str) -> None:
    url = await cli_proxy(env={"FAKE_CLAUDE_MODE": mode})
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions",
            json={"model": "sonnet", "messages": [{"role": "user", "content": "x"}]}
    ) as response:
        body = await response.json()
        assert response.status == status, body
        assert words in body["error"]["message"]
        if status == 429:
            assert response.headers.get("retry-after")


async def test_a_crash_after_the_first_tokens_is_an_in_stream_error(cli_proxy: Start) -> None:
    url = await cli_proxy(env={"FAKE_CLAUDE_MODE": "crash", "FAKE_CLAUDE_DELTA_SECONDS": "0.05"})
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json={
                "model": "sonnet", "stream": True,
                "messages": [{"role": "user", "content": "x"}]}) as response:
        raw = await response.read()
    assert b'"error"' in raw and b"[DONE]" not in raw


async def test_a_silent_cli_fails_after_claude_timeout(cli_proxy: Start) -> None:
    url = await cli_proxy(claude_timeout=0.5, env={"FAKE_CLAUDE_MODE": "hang"})
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={"model": "sonnet", "max_tokens": 5,
                                        "messages": [{"role": "user", "content": "x"}]}
    ) as response:
        assert response.status == 504


async def test_a_client_that_leaves_stops_its_child(cli_proxy: Start, record: Path) -> None:
    url = await cli_proxy(env={"FAKE_CLAUDE_MODE": "hang_mid"})
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/chat/completions", json={
                "model": "sonnet", "stream": True,
                "messages": [{"role": "user", "content": "x"}]}) as response:
        await response.content.readany()
    await asyncio.sleep(0.1)
    pids = [int(p.stem) for p in record.iterdir() if "user" in p.read_text()]
    assert pids
    for _ in range(20):  # within a second
        if all(_gone(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert all(_gone(pid) for pid in pids)


async def test_a_missing_cli_is_a_503_saying_what_to_install(cli_proxy: Start) -> None:
    url = await cli_proxy(claude_cli="/nonexistent/claude")
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/chat/completions", json={
                "model": "sonnet", "messages": [{"role": "user", "content": "x"}]}) as response:
            body = await response.json()
            assert response.status == 503 and "npm install" in body["error"]["message"]
        async with session.get(url + "/health") as response:
            health = await response.json()
    assert health["backends"]["default"]["ok"] is False


async def test_models_are_listed_in_each_clients_format(cli_proxy: Start) -> None:
    url = await cli_proxy()
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x") as openai_client:
        listed = await openai_client.models.list()
    ids = [m.id for m in listed.data]
    assert {"opus", "sonnet", "haiku"} <= set(ids)
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x") as anthropic_client:
        page = await anthropic_client.models.list()
    assert [m.id for m in page.data] == ids


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().rsplit(")", 1)[1].split()[0] == "Z"


async def test_the_session_log_holds_the_request_the_clis_lines_and_timings(
        cli_proxy: Start, tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    url = await cli_proxy(session_log_dir=str(folder), env={"FAKE_CLAUDE_REPLY": "logged"})
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x") as client:
        await client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "log me"}])
    for _ in range(50):
        if folder.exists() and list(folder.iterdir()):
            break
        await asyncio.sleep(0.02)
    (entry,) = [json.loads(p.read_text()) for p in folder.iterdir()]
    assert "log me" in entry["request"] and "logged" in entry["response"]
    lines = [json.loads(line) for line in entry["upstream"].splitlines() if line.strip()]
    assert {"system", "stream_event", "result"} <= {line["type"] for line in lines}
    assert entry["total_ms"] > 0 and entry["backend"] == "default"
