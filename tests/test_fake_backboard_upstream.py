"""The fake backboard.io API keeps to research/backboard.md section 4: auth, accounts,
assistants, threads, messages streamed and not in the recorded layouts, faults, models."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.sse import SSEDecoder
from tests.fakes.backboard_model import HTTPFault, Reply
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard
from tests.support import end_child

ROOT = Path(__file__).parent.parent
OTHER_KEY = "bb-other-account"


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, key: str | None) -> None:
        self.session, self.base, self.key = session, base, key

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key} if self.key else {}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.session.request(method, self.base + path, headers=self.headers(),
                                        **kwargs) as response:
            raw = await response.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            return response.status, body, response.headers

    async def assistant(self, name: str = "proxy") -> str:
        status, body, _ = await self.call("POST", "/assistants", json={"name": name})
        assert status == 200, body
        return str(body["assistant_id"])

    async def thread(self, assistant: str | None = None) -> str:
        assistant = assistant or await self.assistant()
        status, body, _ = await self.call("POST", f"/assistants/{assistant}/threads", json={})
        assert status == 200, body
        return str(body["thread_id"])

    async def send(self, thread: str, content: str, **fields: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", f"/threads/{thread}/messages",
                               json={"content": content, "llm_provider": "openai",
                                     "model_name": "gpt-4o", "memory": "off", **fields})

    async def stream(self, thread: str, content: str, **fields: Any) -> list[dict[str, Any]]:
        """The frames of a streamed answer, parsed; raises when the body is cut."""
        status, raw, headers = await self.send(thread, content, stream=True, **fields)
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream"), raw
        return frames(raw if isinstance(raw, bytes) else json.dumps(raw).encode())


def frames(raw: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    return [json.loads(d) if d != b"[DONE]" else {"type": "[DONE]"} for d in decoder.frames(raw)]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "content_streaming")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackboard]:
    server = FakeBackboard({DEFAULT_KEY: "alice", OTHER_KEY: "bob"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def bb(fake: FakeBackboard, session: aiohttp.ClientSession) -> Client:
    return Client(session, fake.base_url, DEFAULT_KEY)


@pytest.fixture
def other(fake: FakeBackboard, session: aiohttp.ClientSession) -> Client:
    return Client(session, fake.base_url, OTHER_KEY)


# ------------------------------------------------------------------------------ auth


async def test_the_conftest_fixture_serves_under_api(backboard_upstream: FakeBackboard) -> None:
    assert backboard_upstream.base_url.endswith("/api")
    async with aiohttp.ClientSession() as s:
        status, body, _ = await Client(s, backboard_upstream.base_url, DEFAULT_KEY).call(
            "GET", "/models/providers")
    assert status == 200 and "openai" in body["providers"]


async def test_a_missing_key_is_401_or_403_and_an_unknown_key_401(
        fake: FakeBackboard, session: aiohttp.ClientSession) -> None:
    assert (await Client(session, fake.base_url, None).call("GET", "/models"))[:2] == (
        401, {"detail": "Not authenticated"})
    fake.missing_key_status = 403
    assert (await Client(session, fake.base_url, None).call("GET", "/models"))[0] == 403
    status, body, _ = await Client(session, fake.base_url, "bb-wrong").call("GET", "/models")
    assert (status, body) == (401, {"detail": "Invalid API key"})
    assert [c.status for c in fake.calls] == [401, 403, 401]
    assert all(c.account is None for c in fake.calls)


async def test_unknown_paths_answer_like_fastapi(bb: Client) -> None:
    assert (await bb.call("GET", "/nothing/here"))[:2] == (404, {"detail": "Not Found"})


# ------------------------------------------------------------------------ assistants


async def test_assistants_are_made_listed_by_name_and_kept_per_account(
        bb: Client, other: Client, fake: FakeBackboard) -> None:
    first = await bb.assistant("proxy")
    await bb.assistant("something-else")
    await other.assistant("proxy")
    status, listed, _ = await bb.call("GET", "/assistants", params={"name": "proxy"})
    assert status == 200 and [a["assistant_id"] for a in listed] == [first]
    assert set(listed[0]) >= {"assistant_id", "name", "system_prompt", "tok_k", "created_at"}
    fake.name_filter = False  # a server that ignores ?name=: the caller must filter
    _, unfiltered, _ = await bb.call("GET", "/assistants", params={"name": "proxy"})
    assert len(unfiltered) == 2
    assert (await other.call("GET", f"/assistants/{first}"))[:2] == (
        404, {"detail": "Assistant not found"})
    assert (await bb.call("GET", f"/assistants/{first}"))[0] == 200
    assert (await bb.call("DELETE", f"/assistants/{first}"))[0] == 200
    assert (await bb.call("GET", f"/assistants/{first}"))[0] == 404


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 256}])
async def test_an_assistant_needs_a_name_of_1_to_255_characters(bb: Client, body: Any) -> None:
    status, answer, _ = await bb.call("POST", "/assistants", json=body)
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "name"]


async def test_ids_that_are_not_uuids_are_422_with_a_detail_list(bb: Client) -> None:
    status, body, _ = await bb.call("GET", "/assistants/not-a-uuid")
    assert status == 422
    assert body["detail"][0] == {"loc": ["path", "assistant_id"], "type": "uuid_parsing",
                                 "msg": "Input should be a valid UUID", "input": "not-a-uuid"}
    status, body, _ = await bb.call("POST", "/threads/123/messages", json={"content": "x"})
    assert status == 422 and body["detail"][0]["loc"] == ["path", "thread_id"]
    assert (await bb.call("GET", "/assistants", params={"limit": "0"}))[0] == 422


# --------------------------------------------------------------------------- threads


async def test_threads_take_an_empty_object_or_no_body(bb: Client, fake: FakeBackboard) -> None:
    assistant = await bb.assistant()
    status, body, _ = await bb.call("POST", f"/assistants/{assistant}/threads")
    assert status == 200 and body["messages"] == [] and body["metadata_"] is None
    assert re.fullmatch(r"[0-9a-f-]{36}", body["thread_id"])
    fake.strict_thread_body = True
    assert (await bb.call("POST", f"/assistants/{assistant}/threads"))[0] == 422
    assert (await bb.call("POST", f"/assistants/{assistant}/threads", json={}))[0] == 200
    _, listed, _ = await bb.call("GET", f"/assistants/{assistant}/threads")
    assert len(listed) == 2


async def test_a_thread_belongs_to_the_key_that_made_it(bb: Client, other: Client,
                                                        fake: FakeBackboard) -> None:
    thread = await bb.thread()
    assert (await other.send(thread, "hello"))[:2] == (404, {"detail": "Thread not found"})
    assert (await other.call("GET", f"/threads/{thread}"))[0] == 404
    assert [t.thread_id for t in fake.threads_of(DEFAULT_KEY)] == [thread]
    assert fake.threads_of(OTHER_KEY) == []
    await bb.send(thread, "hello")
    status, body, _ = await bb.call("GET", f"/threads/{thread}")
    assert status == 200
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "hello"), ("assistant", "You said: hello")]
    assert (await bb.call("DELETE", f"/threads/{thread}"))[0] == 200
    assert (await bb.send(thread, "again"))[0] == 404


# -------------------------------------------------------------------------- messages


async def test_a_json_reply_has_the_flat_message_response_shape(bb: Client,
                                                                fake: FakeBackboard) -> None:
    thread = await bb.thread()
    status, body, _ = await bb.send(thread, "hi there", stream=False)
    assert status == 200
    assert body["content"] == "You said: hi there"
    assert {k: body[k] for k in ("role", "status", "thread_id", "model_provider",
                                 "model_name", "tool_calls")} == {
        "role": "assistant", "status": "COMPLETED", "thread_id": thread,
        "model_provider": "openai", "model_name": "gpt-4o", "tool_calls": None}
    assert body["input_tokens"] == 2 and body["output_tokens"] == 4
    assert body["total_tokens"] == 6 and body["run_id"].startswith("run_")
    assert {"message", "message_id", "timestamp", "created_at", "attachments"} <= set(body)
    fake.wire.reply_shape = "messages"
    _, newer, _ = await bb.send(thread, "again", stream=False)
    assert [m["role"] for m in newer["messages"]] == ["user", "assistant"]
    assert newer["messages"][-1]["content"] == "You said: again"
    assert newer["context_usage"]["used_tokens"] == 2 + 4 + 1  # the thread's words


@pytest.mark.parametrize("encoding", ["form", "multipart"])
async def test_form_bodies_are_read_like_the_sdks_send_them(bb: Client, fake: FakeBackboard,
                                                            encoding: str) -> None:
    thread = await bb.thread()
    fields = {"content": "from a form", "llm_provider": "anthropic",
              "model_name": "claude-sonnet-4-6", "stream": "True", "memory": "Auto"}
    if encoding == "form":
        data: Any = fields
    else:
        data = aiohttp.FormData(fields)
        data.add_field("files", b"%PDF", filename="a.pdf")
    status, raw, _ = await bb.call("POST", f"/threads/{thread}/messages", data=data)
    assert status == 200 and text_of(frames(raw)) == "You said: from a form"
    recorded = fake.routed("messages")[-1]
    assert recorded.fields["stream"] is True and recorded.fields["memory"] == "Auto"
    assert recorded.fields["llm_provider"] == "anthropic"
    assert recorded.fields["files"] == (["a.pdf"] if encoding == "multipart" else [])
    assert recorded.content_type.startswith(
        "application/x-www-form-urlencoded" if encoding == "form" else "multipart/form-data")


async def test_defaults_and_what_is_refused(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    status, _, _ = await bb.call("POST", f"/threads/{thread}/messages", json={"content": "x"})
    recorded = fake.routed("messages")[-1].fields
    assert status == 200
    assert (recorded["llm_provider"], recorded["model_name"], recorded["memory"],
            recorded["stream"], recorded["send_to_llm"]) == ("openai", "gpt-4o", "off", False,
                                                               True)
    assert (await bb.send(thread, ""))[:2] == (400, {"detail": "Content is required"})
    fake.empty_content_status = 422
    assert (await bb.send(thread, ""))[0] == 422
    assert (await bb.send(thread, "x", memory="sometimes"))[0] == 422
    status, body, _ = await bb.send(thread, "x", model_name="gpt-9")
    assert status == 404 and "model_not_found" in body["detail"]
    fake.unknown_model = "stream"
    events = await bb.stream(thread, "x", model_name="gpt-9")
    assert events[-1]["type"] == "error" and "does not exist" in events[-1]["error"]
    fake.unknown_model = "accept"
    assert (await bb.send(thread, "x", model_name="gpt-9"))[0] == 200


async def test_send_to_llm_false_only_saves_the_message(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    _, body, _ = await bb.send(thread, "remember this", send_to_llm="false")
    assert body["content"] is None
    events = await bb.stream(thread, "and this", send_to_llm=False)
    assert [e["type"] for e in events] == ["message_saved"]
    assert fake.threads[thread].user_messages() == ["remember this", "and this"]
    assert len(fake.threads[thread].messages) == 2


# ------------------------------------------------------------------------ the stream


async def test_the_stream_layout_as_recorded(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    fake.wire.chunk_size = 3
    status, raw, headers = await bb.send(thread, "hello world", stream=True)
    assert raw.startswith(b'data: {"type":"run_started"') and b"\n\n" in raw
    assert b"event:" not in raw and b"[DONE]" not in raw
    events = frames(raw)
    assert [e["type"] for e in events] == (["run_started"] + ["content_streaming"] * 7
                                           + ["run_ended"])
    assert [e["content"] for e in events[1:3]] == ["You", " sa"]
    assert text_of(events) == "You said: hello world"
    end = events[-1]
    assert end["status"] == "completed" and end["run_id"] == events[0]["run_id"]
    assert (end["input_tokens"], end["output_tokens"], end["total_tokens"]) == (2, 4, 6)
    assert end["model_provider"] == "openai" and end["model_name"] == "gpt-4o"


async def test_wire_switches(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    fake.wire.event_lines, fake.wire.done_marker, fake.wire.space = True, True, False
    fake.wire.status_case, fake.wire.run_started = "upper", False
    _, raw, _ = await bb.send(thread, "hi", stream=True)
    assert raw.startswith(b'event: content_streaming\ndata:{"type"')
    assert raw.endswith(b"data:[DONE]\n\n")
    events = frames(raw)
    assert events[-2]["status"] == "COMPLETED" and events[0]["type"] == "content_streaming"


async def test_the_model_answers_from_the_whole_thread(bb: Client) -> None:
    thread = await bb.thread()
    await bb.stream(thread, "My name is Ada.")
    await bb.stream(thread, "I live in Paris.")
    assert text_of(await bb.stream(thread, "recall: what was my first message?")) == (
        'Your first message was: "My name is Ada."')
    assert text_of(await bb.stream(thread, "recall: previous")) == (
        'Your previous message was: "recall: what was my first message?"')
    assert text_of(await bb.stream(thread, "recall: count")) == (
        "This thread holds 5 user messages.")
    transcript = text_of(await bb.stream(thread, "recall: transcript"))
    assert transcript.splitlines()[:2] == ["user: My name is Ada.",
                                           "assistant: You said: My name is Ada."]


async def test_directives_script_the_text_chunks_and_faults(bb: Client) -> None:
    thread = await bb.thread()
    call = '{"tool": "Read", "args": {"file_path": "a.txt"}}'
    events = await bb.stream(thread, f"Some context.\nsay: {call}\nchunk: 1\ndelay: 0.001")
    assert text_of(events) == call
    assert all(len(e["content"]) == 1 for e in events if e["type"] == "content_streaming")
    events = await bb.stream(thread, "say: partial answer\nfail: run_failed after 2")
    assert [e["type"] for e in events][-3:] == ["content_streaming"] * 2 + ["run_failed"]
    assert events[-1]["message"] == "Scripted failure: run_failed"
    events = await bb.stream(thread, "fail: empty")
    assert [e["type"] for e in events] == ["run_started", "run_ended"]


async def test_scripted_replies_come_first_in_order(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    fake.script(Reply(pieces=["Let me ", "look. ", '{"tool":', ' "Read"}']),
                Reply("Thinking done.", reasoning=["Hmm, ", "ok."], usage=False),
                HTTPFault(429, headers={"Retry-After": "3"}))
    first = await bb.stream(thread, "one")
    assert [e["content"] for e in first if e["type"] == "content_streaming"] == [
        "Let me ", "look. ", '{"tool":', ' "Read"}']
    second = await bb.stream(thread, "two")
    assert [e["type"] for e in second][:4] == ["run_started", "reasoning_streaming",
                                               "reasoning_streaming", "reasoning_ended"]
    assert second[2]["accumulated_reasoning"] == "Hmm, ok."
    assert "input_tokens" not in second[-1]
    status, body, headers = await bb.send(thread, "three", stream=True)
    assert (status, body, headers["Retry-After"]) == (429, {"detail": "Rate limit exceeded"},
                                                      "3")
    assert text_of(await bb.stream(thread, "four")) == "You said: four"


async def test_a_reply_can_hold_until_the_test_releases_it(bb: Client,
                                                            fake: FakeBackboard) -> None:
    thread = await bb.thread()
    reply = Reply(pieces=["Lead text. ", '{"tool": "Read", "args": {}}'], hold_after=1)
    fake.script(reply)
    headers = bb.headers()
    async with bb.session.post(f"{bb.base}/threads/{thread}/messages", headers=headers,
                               json={"content": "go", "stream": True}) as response:
        await reply.holding.wait()
        decoder, seen = SSEDecoder(), []
        while not any(f.get("type") == "content_streaming" for f in seen):
            seen += [json.loads(d) for d in decoder.frames(await response.content.readany())]
        assert [f.get("content") for f in seen if f["type"] == "content_streaming"] == [
            "Lead text. "]
        reply.release.set()
        rest = [json.loads(d) for d in decoder.frames(await response.content.read())]
    assert [f["type"] for f in rest] == ["content_streaming", "run_ended"]


@pytest.mark.parametrize(("fault", "last"), [
    ("error", {"type": "error", "error": "boom"}),
    ("run_failed", {"type": "run_failed", "message": "boom"}),
    ("status", {"type": "run_ended", "status": "failed"}),
])
async def test_failures_inside_a_200_stream(bb: Client, fake: FakeBackboard, fault: str,
                                            last: dict[str, Any]) -> None:
    thread = await bb.thread()
    fake.script(Reply("some text", fault=fault, fault_after=1, fault_message="boom"))
    events = await bb.stream(thread, "go")
    assert [e["type"] for e in events[:2]] == ["run_started", "content_streaming"]
    assert {k: events[-1][k] for k in last} == last
    assert [m["role"] for m in fake.threads[thread].messages] == ["user"]  # no reply kept


async def test_a_stream_without_run_ended_and_a_cut_stream(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    fake.script(Reply("whole text", fault="no_run_ended"), Reply("cut text", fault="cut",
                                                                  fault_after=1))
    events = await bb.stream(thread, "one")
    assert events[-1]["type"] == "content_streaming" and text_of(events) == "whole te" + "xt"
    with pytest.raises(aiohttp.ClientPayloadError):
        await bb.stream(thread, "two")


async def test_json_replies_fail_too(bb: Client, fake: FakeBackboard) -> None:
    thread = await bb.thread()
    fake.script(Reply(fault="error", fault_message="provider down"),
                Reply("x", fault="status", status="failed"), Reply("x", fault="cut"))
    assert (await bb.send(thread, "a"))[:2] == (500, {"detail": "provider down"})
    status, body, _ = await bb.send(thread, "b")
    assert status == 200 and body["status"] == "FAILED" and body["content"] is None
    with pytest.raises(aiohttp.ClientPayloadError):
        await bb.send(thread, "c")


async def test_a_full_context_fails_with_context_length(bb: Client, fake: FakeBackboard) -> None:
    fake.context_limit = 5
    thread = await bb.thread()
    assert text_of(await bb.stream(thread, "one two")) == "You said: one two"
    events = await bb.stream(thread, "three four five six")
    assert events[-1]["type"] == "error" and "context_length" in events[-1]["error"]


async def test_a_busy_thread_can_refuse_a_second_message(bb: Client, fake: FakeBackboard) -> None:
    fake.reject_concurrent = True
    thread = await bb.thread()
    fake.script(Reply("slow", end_delay=0.5))
    slow = asyncio.create_task(bb.stream(thread, "first"))
    while not fake.threads[thread].busy:
        await asyncio.sleep(0.01)
    assert (await bb.send(thread, "second"))[:2] == (409, {"detail": "Thread is busy with "
                                                                     "another run"})
    assert text_of(await slow) == "slow"


# ---------------------------------------------------------------------- HTTP faults


async def test_route_faults_hit_only_their_route_for_their_count(bb: Client,
                                                                 fake: FakeBackboard) -> None:
    assistant = await bb.assistant()
    fake.fail(503, route="threads", times=2)
    fake.fail(422, [{"loc": ["body", "content"], "msg": "Field required", "type": "missing"}])
    fake.fail(502, route="models", raw=b"<html><body>Bad gateway</body></html>")
    assert (await bb.call("POST", f"/assistants/{assistant}/threads", json={}))[0] == 503
    assert (await bb.call("GET", f"/assistants/{assistant}/threads"))[0] == 503
    thread = await bb.thread(assistant)
    status, body, _ = await bb.send(thread, "x")
    assert status == 422 and body["detail"][0]["msg"] == "Field required"
    status, raw, headers = await bb.call("GET", "/models")
    assert status == 502 and raw.startswith(b"<html>") and headers["Content-Type"].startswith(
        "text/html")
    assert (await bb.call("GET", "/models"))[0] == 200 and fake.faults == []


async def test_the_journal_records_what_was_sent_without_keys(bb: Client, fake: FakeBackboard,
                                                              session: aiohttp.ClientSession
                                                              ) -> None:
    thread = await bb.thread()
    await bb.send(thread, "hello", stream=True)
    assert fake.sent() == ["hello"]
    call = fake.routed("messages")[0]
    assert (call.route, call.account, call.status) == ("messages.create", "alice", 200)
    async with session.get(fake.base_url + "/__mock/requests") as response:
        journal = await response.json()
    assert [c["route"] for c in journal] == ["assistants.create", "threads.create",
                                             "messages.create"]
    assert DEFAULT_KEY not in json.dumps(journal)


# --------------------------------------------------------------------------- models


async def test_models_with_filters_and_limits(bb: Client) -> None:
    status, body, _ = await bb.call("GET", "/models", params={"model_type": "llm",
                                                              "limit": "500"})
    assert status == 200 and body["total"] == len(body["models"]) >= 10
    model = body["models"][0]
    assert set(model) == {"name", "provider", "model_type", "context_limit",
                          "max_output_tokens", "supports_tools", "api_mode",
                          "embedding_dimensions", "last_updated"}
    _, anthropic, _ = await bb.call("GET", "/models", params={"provider": "anthropic"})
    assert {m["provider"] for m in anthropic["models"]} == {"anthropic"}
    _, page, _ = await bb.call("GET", "/models", params={"skip": "2", "limit": "3"})
    assert len(page["models"]) == 3 and page["total"] > 3
    _, no_tools, _ = await bb.call("GET", "/models", params={"supports_tools": "false",
                                                             "model_type": "llm"})
    assert [m["name"] for m in no_tools["models"]] == ["mistral-large-latest"]
    for limit in ("0", "501"):
        assert (await bb.call("GET", "/models", params={"limit": limit}))[0] == 422
    _, providers, _ = await bb.call("GET", "/models/providers")
    assert providers["total"] == len(providers["providers"]) and "google" in providers[
        "providers"]


# ------------------------------------------------------------------------ standalone


def test_it_runs_standalone_and_stops_on_sigterm() -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.fakes.backboard_upstream",
                              "--port", "0", "--key", "k-standalone"], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")

        async def ask() -> int:
            async with aiohttp.ClientSession() as s, s.get(
                    url + "/models", headers={"X-API-Key": "k-standalone"}) as r:
                return r.status

        assert asyncio.run(ask()) == 200
    finally:
        assert end_child(child) == 0  # SIGTERM: a clean stop
