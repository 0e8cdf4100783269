"""Scripted rounds and the rig the web tool loop tests drive: ``Upstreams`` over scripted
backends, the real failover, the edge writer into a list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from proxy.backends.base import Call, Context
from proxy.backends.upstreams import Upstreams
from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    TextDelta,
    TextPart,
    ThinkingDelta,
    Tool,
    ToolArgsDelta,
    Usage,
)
from proxy.config import Settings
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.edge.streaming import write_stream
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.redaction import Masker
from proxy.routing import Plan, Route
from proxy.state.store import MemoryStore
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.backend import FakeBackend, Step, text_answer
from tests.support import parse_anthropic_sse

CALL = Call(message_id="msg_loop0001", client_model="asked", input_tokens=3)
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}
FETCH_TOOL = {"type": "web_fetch_20250910", "name": "web_fetch"}
ROUND_USAGE, ANSWER_USAGE = Usage(10, 5), Usage(20, 7)
WEATHER = Tool("get_weather", "The weather", {"type": "object", "properties": {}})


def ask(text: str = "What is new in aiohttp?", *, tools: Sequence[dict[str, Any]] = (SEARCH_TOOL,),
        client_tools: tuple[Tool, ...] = ()) -> Request:
    return Request(model="m", messages=(Message("user", (TextPart(text),)),), stream=True,
                   tools=client_tools, server_tools=tuple(tools))


def calls_round(*calls: tuple[str, str, dict[str, Any]], text: str = "Let me look. ",
                thinking: str | None = None, usage: Usage = ROUND_USAGE,
                stop: str = "tool_use") -> list[Step]:
    """A round that thinks (if ``thinking``), writes ``text``, then makes ``calls`` ((id,
    name, input)): one batch a block, the arguments in two pieces."""
    steps: list[Step] = [[MessageStart("msg_up", "fake", Usage(input_tokens=3))]]
    if thinking is not None:
        steps.append([BlockStart(0, "thinking"), ThinkingDelta(0, thinking), BlockStop(0)])
    first = len(steps) - 1
    steps += [[BlockStart(first, "text"), TextDelta(first, text)], [BlockStop(first)]]
    for n, (call_id, name, arguments) in enumerate(calls, start=first + 1):
        raw = orjson.dumps(arguments).decode()
        steps.append([BlockStart(n, "tool_use", tool_id=call_id, tool_name=name),
                      ToolArgsDelta(n, raw[:5]), ToolArgsDelta(n, raw[5:]), BlockStop(n)])
    steps.append([MessageDelta(stop, usage), MessageStop()])
    return steps


def answer(text: str = "aiohttp 3.12 is out.", usage: Usage = ANSWER_USAGE) -> list[Step]:
    steps = text_answer(text)
    steps[-1] = [BlockStop(0), MessageDelta("end_turn", usage), MessageStop()]
    return steps


class Rig:
    """``Upstreams`` over scripted backends (``one``, and ``two`` as its fallback)."""

    def __init__(self, tavily: TavilyClient | None, *scripts: list[Step],
                 fallback: Sequence[list[Step]] = ()) -> None:
        self.one = FakeBackend(list(scripts))
        self.two = FakeBackend(list(fallback) or [answer("never")])
        self.providers = (Provider("one", "http://one"), Provider("two", "http://two"))
        backends = {"one": self.one, "two": self.two}
        context = Context(Settings(ping_interval=0), Masker(), MemoryStore(), tavily)
        self.upstreams = Upstreams(context, make=lambda provider, _: backends[provider.name])
        routes = tuple(Route(p, f"{p.name}-model") for p in self.providers)
        self.plan = Plan(routes if fallback else routes[:1])
        self.trace = Trace(request_id="req_loop")

    async def stream(self, request: Request) -> list[list[Event]]:
        async with self.upstreams.opened(self.providers):
            return [batch async for batch in self.upstreams.stream(request, CALL, self.plan,
                                                                   self.trace)]

    async def sse(self, request: Request) -> list[tuple[str, dict[str, Any]]]:
        """The stream as the client reads it, through the edge writer."""
        async with self.upstreams.opened(self.providers):
            batches = self.upstreams.stream(request, CALL, self.plan, self.trace)
            first = await anext(batches)
            sink = ListSink()
            await write_stream(sink, first, batches, AnthropicStreamEncoder(), ping=PING,
                               interval=0, error_frame=error_frame, trace=self.trace)
        return parse_anthropic_sse(bytes(sink.data))


class ListSink:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    async def write_eof(self, data: bytes = b"") -> None:
        pass


def events(batches: list[list[Event]]) -> list[Event]:
    return [event for batch in batches for event in batch]


def collected(batches: list[list[Event]]) -> Any:
    collector = Collector()
    for batch in batches:
        collector.feed(batch)
    assert collector.message.complete
    return collector.message


def blocks(batches: list[list[Event]]) -> list[tuple[int, str]]:
    return [(e.index, e.kind) for e in events(batches) if isinstance(e, BlockStart)]
