"""The sans-I/O pieces wired together against the fake backboard, by a driver of a few lines
(the real backend, with its store, pool and keys, lives in proxy/backends/): conversations
keep their context turn after turn and after a clear, new conversations never share a
thread, and a tool round trip with two parallel calls comes back as one message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from proxy.canonical import (
    Collector,
    Event,
    Message,
    Request,
    TextDelta,
    TextPart,
    Tool,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.backboard import api
from proxy.dialects.backboard.conversation import plan_turn, reply_parts
from proxy.dialects.backboard.media import without_media
from proxy.dialects.backboard.stream_decode import BackboardStreamDecoder
from proxy.filters.tool_sniffer import ToolSniffer
from proxy.prompt_tools.describe import describe_tools
from proxy.sse import SSEDecoder
from tests.fakes.backboard_model import Reply
from tests.fakes.backboard_upstream import DEFAULT_KEY, FakeBackboard

MODEL = "claude-sonnet-4-6"
TOOLS = (Tool("Read", "Reads a file.", {"properties": {"file_path": {}}, "required": ["file_path"]}),
         Tool("Bash", "Runs a command.", {"properties": {"command": {}}}))


class Driver:
    """One key, one assistant, a dict for a store: just enough to use the pieces."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base
        self.threads: dict[str, str] = {}  # conversation key -> thread id
        self.assistant = ""

    async def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        async with self.session.post(self.base + path, json=body) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def turn(self, request: Request) -> Collector:
        names = [tool.name for tool in request.tools]
        turn = plan_turn(describe_tools(without_media(request)))
        thread = self.threads.pop(turn.lookup_key, None) if turn.lookup_key else None
        content = turn.new_turn if thread else turn.replay
        if thread is None:
            if not self.assistant:
                self.assistant = api.assistant_id(await self.post("/assistants",
                                                                  api.assistant_body()))
            thread = api.thread_id(await self.post(f"/assistants/{self.assistant}/threads",
                                                   api.THREAD_BODY))
        decoder = BackboardStreamDecoder(message_id="msg_1", model=MODEL, input_tokens=1)
        sniffer, sse, collector = ToolSniffer(names), SSEDecoder(), Collector()
        async with self.session.post(f"{self.base}/threads/{thread}/messages",
                                     json=api.message_fields(content, MODEL, stream=True)) as r:
            async for chunk in r.content.iter_any():
                collector.feed(sniffer.feed(decoder.feed(sse.frames(chunk))))
        collector.feed(sniffer.feed(decoder.finish(truncated=sse.truncated)))
        self.threads[turn.store_key(reply_parts(collector.message))] = thread
        return collector


@pytest.fixture
async def driver(backboard_upstream: FakeBackboard) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession(headers={"X-API-Key": DEFAULT_KEY}) as session:
        yield Driver(session, backboard_upstream.base_url)


def ask(history: list[Message], text: str, system: str = "Be helpful.") -> Request:
    history.append(Message("user", (TextPart(text),)))
    return Request(model=MODEL, messages=tuple(history), system=(system,), tools=TOOLS)


async def chat(driver: Driver, history: list[Message], text: str) -> str:
    collector = await driver.turn(ask(history, text))
    reply = "".join(b.text for b in collector.message.blocks if b.kind == "text")
    history.append(Message("assistant", reply_parts(collector.message)))
    return reply


async def test_the_third_turn_sees_the_first_and_only_new_turns_are_sent(
        driver: Driver, backboard_upstream: FakeBackboard) -> None:
    history: list[Message] = []
    await chat(driver, history, "My name is Ada.")
    await chat(driver, history, "I like tea.")
    answer = await chat(driver, history, "recall: first")
    assert "My name is Ada." in answer
    assert len(backboard_upstream.threads) == 1
    sent = backboard_upstream.sent()
    assert sent[0].startswith("<system>\nBe helpful.\n\n# Tools\n") and "My name is Ada." in sent[0]
    assert sent[1:] == ["I like tea.", "recall: first"]
    assert all(c.fields["memory"] == "off" and c.fields["llm_provider"] == "anthropic"
               for c in backboard_upstream.routed("messages"))


async def test_after_a_clear_the_history_is_replayed_to_a_fresh_thread(
        driver: Driver, backboard_upstream: FakeBackboard) -> None:
    history: list[Message] = []
    await chat(driver, history, "The password is swordfish.")
    await chat(driver, history, "Noted?")
    driver.threads.clear()  # a restart, a TTL, another worker, POST /debug/clear
    answer = await chat(driver, history, "recall: first")
    assert "The password is swordfish." in answer
    assert len(backboard_upstream.threads) == 2
    replay = backboard_upstream.sent()[-1]
    assert "<conversation_so_far>" in replay and replay.endswith("recall: first")
    assert "You said: Noted?" in replay  # the assistant's turns are replayed too


async def test_new_conversations_never_share_a_thread(driver: Driver,
                                                      backboard_upstream: FakeBackboard) -> None:
    one: list[Message] = []
    two: list[Message] = []
    await chat(driver, one, "Hello")
    await chat(driver, two, "Hello")  # the same first message, the same reply: the same key
    assert len(backboard_upstream.threads) == 2
    await chat(driver, one, "I am one.")  # takes the key (a thread with this very history)
    await chat(driver, two, "I am two.")  # the key is gone: a fresh thread, with a replay
    assert len(backboard_upstream.threads) == 3

    def holding(text: str) -> list[str]:
        return [t.thread_id for t in backboard_upstream.threads.values()
                if any(text in (m["content"] or "") for m in t.messages)]

    assert len(holding("I am one.")) == len(holding("I am two.")) == 1
    assert holding("I am one.") != holding("I am two.")


async def test_a_tool_round_trip_with_two_parallel_calls(driver: Driver,
                                                         backboard_upstream: FakeBackboard
                                                         ) -> None:
    backboard_upstream.script(Reply(
        'I will look at both.\n```json\n{"calls": [{"tool": "Read", "args": {"file_path": '
        '"a.txt"}}, {"tool": "Bash", "args": {"command": "ls"}}]}\n```', chunk_size=3))
    history: list[Message] = []
    collector = await driver.turn(ask(history, "Check a.txt and the folder."))
    message = collector.message
    assert message.stop_reason == "tool_use"
    assert [(b.kind, b.tool_name, b.tool_input) for b in message.blocks] == [
        ("text", "", {}), ("tool_use", "Read", {"file_path": "a.txt"}),
        ("tool_use", "Bash", {"command": "ls"})]
    assert message.blocks[0].text == "I will look at both.\n"
    history.append(Message("assistant", reply_parts(message)))
    calls = [p for p in history[-1].parts if isinstance(p, ToolUsePart)]
    history.append(Message("user", (ToolResultPart(calls[0].id, (TextPart("hello"),)),
                                    ToolResultPart(calls[1].id, (TextPart("denied"),), True))))
    await driver.turn(Request(model=MODEL, messages=tuple(history), system=("Be helpful.",),
                              tools=TOOLS))
    assert len(backboard_upstream.threads) == 1
    assert backboard_upstream.sent()[-1] == (
        '<tool_results>\n<result tool="Read">\nhello\n</result>\n'
        '<result tool="Bash" error="true">\ndenied\n</result>\n</tool_results>')


async def test_the_lead_text_is_out_before_the_fake_sends_the_call(
        driver: Driver, backboard_upstream: FakeBackboard) -> None:
    reply = Reply(pieces=["Let me read it. ", '{"tool": "Read", ', '"args": {"file_path": "a"}}'],
                  hold_after=1)
    backboard_upstream.script(reply)
    thread = api.thread_id(await driver.post(
        f"/assistants/{api.assistant_id(await driver.post('/assistants', api.assistant_body()))}"
        "/threads", {}))
    decoder = BackboardStreamDecoder(message_id="m", model=MODEL, input_tokens=1)
    sniffer, sse, collector = ToolSniffer(["Read"]), SSEDecoder(), Collector()
    seen: list[Event] = []
    async with driver.session.post(f"{driver.base}/threads/{thread}/messages",
                                   json=api.message_fields("go", MODEL, stream=True)) as r:
        while not any(isinstance(e, TextDelta) for e in seen):
            seen += sniffer.feed(decoder.feed(sse.frames(await r.content.readany())))
        assert reply.holding.is_set() and not reply.release.is_set()
        assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "Let me read it. "
        collector.feed(seen)
        reply.release.set()
        async for chunk in r.content.iter_any():
            collector.feed(sniffer.feed(decoder.feed(sse.frames(chunk))))
    kinds = [(b.kind, b.tool_name) for b in collector.message.blocks]
    assert kinds == [("text", ""), ("tool_use", "Read")] and collector.message.complete
    assert collector.message.blocks[0].text == "Let me read it. "
