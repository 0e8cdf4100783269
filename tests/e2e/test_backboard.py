"""backboard.io as a backend, end to end: the official SDKs against the real app on a real
port, in front of the fake backboard (tests/fakes/backboard_upstream.py). Each of
bbd2api's defects is a test here (issue 10)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from proxy.providers import parse_providers
from tests.fakes.backboard_model import Reply
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard
from tests.support import check_anthropic_stream, parse_anthropic_sse

MODEL = "claude-sonnet-4-6"
READ = {"name": "Read", "description": "Reads a file from the local filesystem.",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                         "required": ["file_path"]}}
BASH = {"name": "Bash", "description": "Runs a shell command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                         "required": ["command"]}}


@pytest.fixture
async def bb_url(backboard_upstream: FakeBackboard, start_proxy: Any) -> str:
    return await start_proxy(upstream_url=backboard_upstream.base_url,
                             upstream_dialect="backboard", upstream_api_key=DEFAULT_KEY,
                             thread_pool_size=2)


def claude(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client", max_retries=0)


async def turn(url: str, history: list[dict[str, Any]], text: str, **extra: Any) -> Any:
    history.append({"role": "user", "content": text})
    async with claude(url) as api:
        message = await api.messages.create(model=MODEL, max_tokens=100, messages=history,
                                            system="Be helpful.", **extra)
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                     for b in message.content]})
    return message


def text_of(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


async def test_the_third_turn_sees_the_first_and_only_new_turns_are_sent(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    history: list[dict[str, Any]] = []
    await turn(bb_url, history, "My name is Ada.")
    await turn(bb_url, history, "I like tea.")
    third = await turn(bb_url, history, "recall: first")
    assert "My name is Ada." in text_of(third)
    used = {c.path.split("/")[-2] for c in backboard_upstream.routed("messages")}
    assert len(used) == 1  # one conversation, one thread
    assert backboard_upstream.sent()[1:] == ["I like tea.", "recall: first"]


async def test_two_new_conversations_never_share_a_thread(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    one: list[dict[str, Any]] = []
    two: list[dict[str, Any]] = []
    await asyncio.gather(turn(bb_url, one, "Hello"), turn(bb_url, two, "Hello"))
    await turn(bb_url, one, "I am one.")
    await turn(bb_url, two, "I am two.")
    threads = [c.path.split("/")[-2] for c in backboard_upstream.routed("messages")]
    assert len(set(threads[:2])) == 2


async def test_after_a_clear_the_history_is_replayed(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    history: list[dict[str, Any]] = []
    await turn(bb_url, history, "The password is swordfish.")
    await turn(bb_url, history, "Noted?")
    async with aiohttp.ClientSession() as session:
        async with session.get(bb_url + "/debug/state") as response:
            state = await response.json()
        (backend,) = state["backends"].values()
        assert backend["maps"]["conv"]["count"] == 1
        assert DEFAULT_KEY not in str(state)
        async with session.post(bb_url + "/debug/clear") as response:
            assert (await response.json())["cleared"]
    answer = await turn(bb_url, history, "recall: first")
    assert "The password is swordfish." in text_of(answer)
    assert "<conversation_so_far>" in backboard_upstream.sent()[-1]


async def test_a_restart_finds_the_assistant_again(
        backboard_upstream: FakeBackboard, start_proxy: Any) -> None:
    for _ in range(2):  # two proxies, one after the other, the same key
        url = await start_proxy(upstream_url=backboard_upstream.base_url,
                                upstream_dialect="backboard", upstream_api_key=DEFAULT_KEY)
        await turn(url, [], "hi")
    assert len(backboard_upstream.assistants_of(DEFAULT_KEY)) == 1


async def test_a_tool_round_trip_with_two_parallel_calls(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    backboard_upstream.script(Reply(
        'Looking at both.\n```json\n{"calls": [{"tool": "Read", "args": {"file_path": '
        '"a.txt"}}, {"tool": "Bash", "args": {"command": "ls"}}]}\n```', chunk_size=4))
    history: list[dict[str, Any]] = []
    message = await turn(bb_url, history, "Check a.txt and the folder.", tools=[READ, BASH])
    assert message.stop_reason == "tool_use"
    calls = [b for b in message.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("Read", {"file_path": "a.txt"}),
                                                  ("Bash", {"command": "ls"})]
    assert calls[0].id != calls[1].id and all(c.id.startswith("toolu_") for c in calls)
    history.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": calls[0].id, "content": "contents of a"},
        {"type": "tool_result", "tool_use_id": calls[1].id, "content": "a.txt b.txt",
         "is_error": True}]})
    async with claude(bb_url) as api:
        await api.messages.create(model=MODEL, max_tokens=100, messages=history,
                                  system="Be helpful.", tools=[READ, BASH])
    last = backboard_upstream.sent()[-1]
    assert "contents of a" in last and "a.txt b.txt" in last  # both results, one message
    threads = [c.path.split("/")[-2] for c in backboard_upstream.routed("messages")]
    assert threads[0] == threads[1]  # the results went to the thread that asked


async def test_lead_text_streams_before_the_call_is_sent(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    reply = Reply('First I will read it. {"tool": "Read", "args": {"file_path": "x"}}',
                  chunk_size=6, hold_after=3)
    backboard_upstream.script(reply)
    async with claude(bb_url) as api, api.messages.stream(
            model=MODEL, max_tokens=100, tools=[READ],
            messages=[{"role": "user", "content": "go"}]) as s:
        seen = ""
        async for event in s:
            if event.type == "text":
                seen += event.text
            if "First I will" in seen and not reply.release.is_set():
                assert reply.holding.is_set()  # the call's JSON is not even sent yet
                reply.release.set()
        final = await s.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].type == "tool_use"


@pytest.mark.parametrize(("fault", "words"), [
    ("error", "The model provider returned an error."),
    ("run_failed", "The model provider returned an error."),
    ("status", "failed"),
    ("no_run_ended", "before"),
])
async def test_failures_are_real_errors_never_an_empty_reply(
        bb_url: str, backboard_upstream: FakeBackboard, fault: str, words: str) -> None:
    backboard_upstream.script(Reply("partial answer", chunk_size=4, fault=fault,  # type: ignore[arg-type]
                                    fault_after=2))
    raw = await _stream_raw(bb_url)
    frames = parse_anthropic_sse(raw)
    check_anthropic_stream(frames, complete=False)
    assert frames[-1][0] == "error" and words in frames[-1][1]["error"]["message"]


async def test_a_failure_before_any_content_is_an_http_error(
        bb_url: str, backboard_upstream: FakeBackboard) -> None:
    backboard_upstream.script(Reply("", fault="run_failed", fault_after=0))
    async with claude(bb_url) as api:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await api.messages.create(model=MODEL, max_tokens=10,
                                      messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code >= 500


async def test_a_bad_key_is_the_clients_401_and_never_logged(
        backboard_upstream: FakeBackboard, start_proxy: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = await start_proxy(upstream_url=backboard_upstream.base_url,
                            upstream_dialect="backboard", upstream_api_key="bb-wrong-key-123")
    async with claude(url) as api:
        with pytest.raises(anthropic.AuthenticationError):
            await api.messages.create(model=MODEL, max_tokens=10,
                                      messages=[{"role": "user", "content": "x"}])
    assert not [r for r in caplog.records if "bb-wrong-key-123" in r.getMessage()]


async def test_429_keeps_its_retry_after(bb_url: str, backboard_upstream: FakeBackboard) -> None:
    backboard_upstream.fail(429, "Too many requests", headers={"retry-after": "9"}, times=10)
    async with aiohttp.ClientSession() as session, session.post(
            bb_url + "/v1/messages", json={"model": MODEL, "max_tokens": 5,
                                           "messages": [{"role": "user", "content": "x"}]}
    ) as response:
        assert response.status == 429 and response.headers["retry-after"] == "9"


async def test_images_become_markers_and_are_said(
        bb_url: str, backboard_upstream: FakeBackboard,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}
    async with claude(bb_url) as api:
        await api.messages.create(model=MODEL, max_tokens=10, messages=[
            {"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}])
    assert "[image: not shown" in backboard_upstream.sent()[-1]
    assert any("not sent to backboard" in r.getMessage() for r in caplog.records)


async def test_openai_clients_streaming_and_not(bb_url: str,
                                                backboard_upstream: FakeBackboard) -> None:
    async with openai.AsyncOpenAI(base_url=bb_url + "/v1", api_key="x", max_retries=0) as client:
        done = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "say: plain hello"}])
        assert done.choices[0].message.content == "plain hello"
        pieces = []
        backboard_upstream.script(Reply("streamed hello", chunk_size=3, delay=0.02))
        stream = await client.chat.completions.create(
            model=MODEL, stream=True, messages=[{"role": "user", "content": "hello?"}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == "streamed hello" and len(pieces) > 1


async def test_models_are_backboards_in_each_clients_format(bb_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=bb_url + "/v1", api_key="x") as client:
        listed = await client.models.list()
    ids = [m.id for m in listed.data]
    assert MODEL in ids and "gpt-4o" in ids and "text-embedding-3-small" not in ids
    assert "openrouter/meta-llama/llama-3.3-70b-instruct" in ids  # routes back to its provider
    async with claude(bb_url) as api:
        page = await api.models.list()
    assert [m.id for m in page.data] == ids


async def test_a_providers_file_provider_of_kind_backboard(
        backboard_upstream: FakeBackboard, start_proxy: Any) -> None:
    file = parse_providers({"providers": [
        {"name": "bb", "kind": "backboard", "base_url": backboard_upstream.base_url,
         "api_key": DEFAULT_KEY, "models": [{"id": "smart", "remote_id": MODEL}]}]})
    url = await start_proxy(providers_file=file)
    async with claude(url) as api:
        message = await api.messages.create(model="smart", max_tokens=10, messages=[
            {"role": "user", "content": "say: via the file"}])
    assert text_of(message) == "via the file"
    assert backboard_upstream.routed("messages")[-1].fields["model_name"] == MODEL


async def _stream_raw(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.post(
            url + "/v1/messages", json={"model": MODEL, "max_tokens": 50, "stream": True,
                                        "messages": [{"role": "user", "content": "go"}]}
    ) as response:
        assert response.status == 200
        return await response.read()
