"""The web tool loop through the real hook (``Upstreams.stream``) and the real failover,
with scripted backends (no upstream port) and the fake Tavily server: rounds, renumbering,
the next round's conversation, usage sums, max_uses, the rounds bound, a client tool in the
same round, Tavily failures, and a second round failing before and after its first bytes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from proxy.backends.base import Batches, Call, Context
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
    ServerToolError,
    ServerToolUse,
    TextDelta,
    TextPart,
    ThinkingDelta,
    Tool,
    ToolArgsDelta,
    ToolResultPart,
    ToolUsePart,
    Usage,
    WebFetchPage,
    coalesce,
)
from proxy.config import Settings
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.edge.streaming import write_stream
from proxy.errors import InvalidRequest, UpstreamStatusError, UpstreamStreamError
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.redaction import Masker
from proxy.routing import Plan, Route
from proxy.state.store import MemoryStore
from proxy.web_tools.loop import web_tool_stream
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.backend import Fail, FakeBackend, Step, text_answer
from tests.fakes.tavily import KEY, FakeTavily
from tests.support import check_anthropic_stream, parse_anthropic_sse

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


@pytest.fixture
async def tavily(fake_tavily: FakeTavily) -> AsyncIterator[TavilyClient]:
    async with TavilyClient(TavilySettings(api_key=KEY, base_url=fake_tavily.base_url,
                                           timeout=2.0)) as client:
        yield client


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


# ------------------------------------------------------------------------------- rounds


async def test_a_search_round_then_the_answer_in_one_response(
        tavily: TavilyClient, fake_tavily: FakeTavily) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "aiohttp news"})),
              answer())
    batches = await rig.stream(ask())
    assert blocks(batches) == [(0, "text"), (1, "server_tool_use"),
                               (2, "web_search_tool_result"), (3, "text")]
    all_events = events(batches)
    assert sum(isinstance(e, MessageStart) for e in all_events) == 1
    assert sum(isinstance(e, MessageDelta) for e in all_events) == 1
    assert isinstance(all_events[-1], MessageStop)
    message = collected(batches)
    use, result = message.blocks[1], message.blocks[2]
    assert use.tool_name == "web_search" and use.tool_input == {"query": "aiohttp news"}
    assert use.tool_id.startswith("srvtoolu_ldp_") and result.tool_id == use.tool_id
    assert [hit.url for hit in result.result] == [
        f"https://site{n}.example.com/aiohttp-news" for n in (1, 2, 3)]
    assert [b.text for b in message.blocks if b.kind == "text"] == [
        "Let me look. ", "aiohttp 3.12 is out."]
    # usage: both rounds summed, with the server tool count
    assert message.usage == Usage(30, 12, server_tool_use=ServerToolUse(1, 0))
    assert message.stop_reason == "end_turn"
    assert [c.path for c in fake_tavily.calls] == ["/search"]
    assert fake_tavily.calls[0].body["query"] == "aiohttp news"


async def test_the_model_gets_the_functions_and_then_its_call_and_the_result(
        tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "aiohttp news"})),
              answer())
    await rig.stream(ask(client_tools=(WEATHER,)))
    first, second = (played.request for played in rig.one.calls)
    assert [t.name for t in first.tools] == ["get_weather", "web_search"]
    assert first.server_tools == () and first.messages == ask().messages
    assert second.tools == first.tools
    user, assistant, results = second.messages
    assert assistant == Message("assistant", (
        TextPart("Let me look. "), ToolUsePart("call_1", "web_search", {"query": "aiohttp news"})))
    (result,) = results.parts
    assert isinstance(result, ToolResultPart) and result.tool_use_id == "call_1"
    read = orjson.loads(result.content[0].text)  # type: ignore[union-attr]
    assert read["query"] == "aiohttp news" and len(read["results"]) == 3
    assert read["results"][0]["content"] == "Snippet 1 about aiohttp news."


async def test_the_text_before_a_call_is_out_before_the_search_starts(
        tavily: TavilyClient, fake_tavily: FakeTavily) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), answer())
    async with rig.upstreams.opened(rig.providers):
        batches = rig.upstreams.stream(ask(), CALL, rig.plan, rig.trace)
        seen: list[Event] = []
        while not any(isinstance(e, BlockStart) and e.kind == "server_tool_use" for e in seen):
            seen += await anext(batches)
            assert fake_tavily.calls == []  # nothing was searched while this went out
        assert any(isinstance(e, TextDelta) and e.text == "Let me look. " for e in seen)
        after = await anext(batches)
        assert len(fake_tavily.calls) == 1
        assert isinstance(after[0], BlockStart) and after[0].kind == "web_search_tool_result"
        await batches.aclose()


async def test_blocks_renumbered_across_three_rounds_with_thinking(tavily: TavilyClient) -> None:
    thinking_round = calls_round(("call_2", "web_search", {"query": "two"}), text="More. ",
                                 thinking="hmm")
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "one"})), thinking_round,
              answer())
    sse = await rig.sse(ask())
    check_anthropic_stream(sse)
    starts = [(d["index"], d["content_block"]["type"]) for n, d in sse
              if n == "content_block_start"]
    assert starts == [(0, "text"), (1, "server_tool_use"), (2, "web_search_tool_result"),
                      (3, "thinking"), (4, "text"), (5, "server_tool_use"),
                      (6, "web_search_tool_result"), (7, "text")]
    ids = [d["content_block"]["id"] for n, d in sse if n == "content_block_start"
           and d["content_block"]["type"] == "server_tool_use"]
    assert len(set(ids)) == 2
    (delta,) = [d for n, d in sse if n == "message_delta"]
    assert delta["usage"]["server_tool_use"] == {"web_search_requests": 2,
                                                 "web_fetch_requests": 0}
    assert delta["usage"]["input_tokens"] == 40 and delta["usage"]["output_tokens"] == 17
    third = rig.one.calls[2].request.messages
    assert [m.role for m in third] == ["user", "assistant", "user", "assistant", "user"]


# ----------------------------------------------------------------------------- limits


async def test_max_uses_spent_is_an_error_block_and_tavily_is_not_asked(
        tavily: TavilyClient, fake_tavily: FakeTavily) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "one"}),
                                  ("call_2", "web_search", {"query": "two"})), answer())
    message = collected(await rig.stream(ask(tools=({**SEARCH_TOOL, "max_uses": 1},))))
    results = [b.result for b in message.blocks if b.kind == "web_search_tool_result"]
    assert isinstance(results[0], tuple)
    assert results[1] == ServerToolError("max_uses_exceeded")
    assert len(fake_tavily.calls) == 1
    assert message.usage.server_tool_use == ServerToolUse(1, 0)
    told = rig.one.calls[1].request.messages[-1].parts[1]
    assert isinstance(told, ToolResultPart) and told.is_error
    assert "max_uses_exceeded" in told.content[0].text  # type: ignore[union-attr]
    assert "At most 1 searches" in (rig.one.calls[0].request.tools[0].description or "")


async def test_rounds_are_bounded_and_the_answer_pauses(tavily: TavilyClient) -> None:
    search = calls_round(("call_n", "web_search", {"query": "again"}))
    rig = Rig(tavily, search)  # the model searches every round
    async with rig.upstreams.opened(rig.providers):
        batches = web_tool_stream(
            lambda request: rig.upstreams.stream(request, CALL, rig.plan, rig.trace),
            ask(), CALL, tavily, max_rounds=3)
        message = collected([batch async for batch in batches])
    assert len(rig.one.calls) == 3
    assert message.stop_reason == "pause_turn"
    assert message.blocks[-1].kind == "web_search_tool_result"
    assert message.usage.server_tool_use == ServerToolUse(3, 0)


async def test_a_client_tool_in_the_same_round_ends_the_answer(
        tavily: TavilyClient, fake_tavily: FakeTavily) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "rome"}),
                                  ("call_2", "get_weather", {"city": "Rome"})), answer())
    batches = await rig.stream(ask(client_tools=(WEATHER,)))
    assert len(rig.one.calls) == 1 and len(fake_tavily.calls) == 1
    message = collected(batches)
    assert [b.kind for b in message.blocks] == ["text", "server_tool_use",
                                                "web_search_tool_result", "tool_use"]
    tool = message.blocks[-1]
    assert (tool.tool_id, tool.tool_name, tool.tool_input) == ("call_2", "get_weather",
                                                               {"city": "Rome"})
    assert message.stop_reason == "tool_use"
    assert message.usage.server_tool_use == ServerToolUse(1, 0)


# ------------------------------------------------------------------------------ fetch


async def test_fetch_of_a_url_from_the_search_with_the_dns_check(
        fake_tavily: FakeTavily) -> None:
    page = "https://site1.example.com/aiohttp"
    fake_tavily.pages[page] = "# aiohttp\n" + "x" * 3000
    resolved: list[str] = []

    async def resolver(host: str) -> list[str]:
        resolved.append(host)
        return ["93.184.215.14"]

    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url, fetch_max_chars=1000)
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_search", {"query": "aiohttp"})),
                  calls_round(("call_2", "web_fetch", {"url": page})), answer())
        async with rig.upstreams.opened(rig.providers):
            batches = web_tool_stream(
                lambda request: rig.upstreams.stream(request, CALL, rig.plan, rig.trace),
                ask(tools=(SEARCH_TOOL, FETCH_TOOL)), CALL, client, resolver=resolver)
            message = collected([batch async for batch in batches])
    fetched = message.blocks[5]
    assert fetched.kind == "web_fetch_tool_result" and isinstance(fetched.result, WebFetchPage)
    assert fetched.result.url == page and len(fetched.result.text) == 1000
    assert resolved == ["site1.example.com"]
    assert message.usage.server_tool_use == ServerToolUse(1, 1)


@pytest.mark.parametrize(("url", "code", "addresses"), [
    ("https://elsewhere.example.net/?q=secret", "url_not_in_prior_context", ["93.184.215.14"]),
    ("https://intranet.example.com/", "url_not_allowed", ["10.0.0.5"]),  # by its DNS answer
    ("http://169.254.169.254/latest/meta-data/", "url_not_allowed", []),
    ("file:///etc/passwd", "url_not_allowed", []),
])
async def test_fetch_refusals_are_error_blocks_and_tavily_is_not_asked(
        fake_tavily: FakeTavily, url: str, code: str, addresses: list[str]) -> None:
    async def resolver(host: str) -> list[str]:
        return addresses

    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url)
    question = "Read https://intranet.example.com/ and http://169.254.169.254/latest/meta-data/"
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_fetch", {"url": url})), answer())
        async with rig.upstreams.opened(rig.providers):
            batches = web_tool_stream(
                lambda request: rig.upstreams.stream(request, CALL, rig.plan, rig.trace),
                ask(question, tools=(FETCH_TOOL,)), CALL, client, resolver=resolver)
            message = collected([batch async for batch in batches])
    assert message.blocks[2].result == ServerToolError(code)
    assert fake_tavily.calls == []
    assert message.usage.server_tool_use == ServerToolUse(0, 0)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(("status", "code"), [(401, "unavailable"), (429, "too_many_requests"),
                                              (500, "unavailable"), (503, "unavailable")])
async def test_a_tavily_failure_is_a_result_the_model_reads(
        tavily: TavilyClient, fake_tavily: FakeTavily, status: int, code: str) -> None:
    fake_tavily.fail_next(status)
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), answer())
    message = collected(await rig.stream(ask()))
    assert message.blocks[2].result == ServerToolError(code)
    assert message.stop_reason == "end_turn" and message.blocks[3].text == "aiohttp 3.12 is out."
    told = rig.one.calls[1].request.messages[-1].parts[0]
    assert isinstance(told, ToolResultPart) and told.is_error
    assert message.usage.server_tool_use == ServerToolUse(0, 0)


async def test_a_tavily_timeout_is_a_result_the_model_reads(fake_tavily: FakeTavily) -> None:
    fake_tavily.delay = 5.0
    settings = TavilySettings(api_key=KEY, base_url=fake_tavily.base_url, timeout=0.2)
    async with TavilyClient(settings) as client:
        rig = Rig(client, calls_round(("call_1", "web_search", {"query": "q"})), answer())
        message = collected(await rig.stream(ask()))
    assert message.blocks[2].result == ServerToolError("unavailable")
    assert message.stop_reason == "end_turn"


async def test_a_failing_first_round_is_still_an_http_error(tavily: TavilyClient) -> None:
    rig = Rig(tavily, [Fail(UpstreamStatusError("bad field", status=400))])
    async with rig.upstreams.opened(rig.providers):
        batches = rig.upstreams.stream(ask(), CALL, rig.plan, rig.trace)
        with pytest.raises(UpstreamStatusError) as caught:
            await anext(batches)
    assert caught.value.status == 400


async def test_a_second_round_failing_before_its_bytes_fails_over(tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})),
              [Fail(UpstreamStatusError("overloaded", status=503))],
              fallback=[answer("From the fallback.")])
    sse = await rig.sse(ask())
    check_anthropic_stream(sse)
    texts = "".join(d["delta"]["text"] for n, d in sse if n == "content_block_delta"
                    and d["delta"]["type"] == "text_delta")
    assert texts == "Let me look. From the fallback."
    assert len(rig.one.calls) == 2 and len(rig.two.calls) == 1
    assert rig.two.calls[0].request.messages[-1].parts[0].tool_use_id == "call_1"  # type: ignore[union-attr]


async def test_a_second_round_failing_with_nothing_left_is_an_in_stream_error(
        tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})),
              [Fail(UpstreamStatusError("overloaded", status=503))])
    sse = await rig.sse(ask())
    check_anthropic_stream(sse, complete=False)
    names = [n for n, _ in sse]
    assert "message_delta" not in names  # round 1's end was held back, as it was not the last
    assert [d["content_block"]["type"] for n, d in sse if n == "content_block_start"] == [
        "text", "server_tool_use", "web_search_tool_result"]
    assert sse[-1][1]["error"]["message"] == "overloaded"


async def test_a_second_round_failing_after_its_bytes_is_an_in_stream_error(
        tavily: TavilyClient) -> None:
    broken = answer()[:2] + [Fail(UpstreamStreamError("the upstream broke off"))]
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), broken)
    sse = await rig.sse(ask())
    check_anthropic_stream(sse, complete=False)
    texts = [d["delta"]["text"] for n, d in sse if n == "content_block_delta"
             and d["delta"]["type"] == "text_delta"]
    assert texts == ["Let me look. ", "aiohttp 3.12 is out."]


# ----------------------------------------------------------------------- without a key


async def test_without_a_key_the_tools_are_left_out_and_the_answer_says_so() -> None:
    rig = Rig(None, answer("From memory."))
    batches = await rig.stream(ask(tools=(SEARCH_TOOL, FETCH_TOOL), client_tools=(WEATHER,)))
    message = collected(batches)
    assert [b.kind for b in message.blocks] == ["text", "text"]
    assert "no Tavily key is set" in message.blocks[0].text
    assert "web_search_20250305 and web_fetch_20250910 were left out" in message.blocks[0].text
    assert message.blocks[1].text == "From memory."
    sent = rig.one.calls[0].request
    assert [t.name for t in sent.tools] == ["get_weather"] and sent.server_tools == ()
    assert rig.upstreams.unserved(ask()) == ("web_search_20250305",)


async def test_web_search_options_without_a_key_are_named_too() -> None:
    rig = Rig(None, answer())
    request = Request(model="m", messages=ask().messages, web_search_options={})
    assert rig.upstreams.unserved(request) == ("web_search_options",)
    message = collected(await rig.stream(request))
    assert "web_search_options was left out" in message.blocks[0].text


async def test_a_client_tool_named_like_an_offered_one_is_refused(tavily: TavilyClient) -> None:
    rig = Rig(tavily, answer())
    clash = Request(model="m", messages=ask().messages, web_search_options={},
                    tools=(Tool("web_search", None, {"type": "object"}),))
    async with rig.upstreams.opened(rig.providers):
        with pytest.raises(InvalidRequest):
            rig.upstreams.stream(clash, CALL, rig.plan, rig.trace)
    assert rig.one.calls == []


async def test_requests_without_web_tools_take_the_plain_path(tavily: TavilyClient) -> None:
    rig = Rig(tavily, answer())
    plain = Request(model="m", messages=ask().messages)
    batches: Batches
    async with rig.upstreams.opened(rig.providers):
        batches = rig.upstreams.stream(plain, CALL, rig.plan, rig.trace)
        got = [batch async for batch in batches]
    assert rig.one.calls[0].request is plain
    assert collected(got).usage.server_tool_use is None


@pytest.mark.parametrize("seed", range(5))
async def test_the_client_sees_the_same_events_however_the_rounds_are_batched(
        tavily: TavilyClient, seed: int) -> None:
    rounds = [calls_round(("call_1", "web_search", {"query": "q"}), thinking="hmm"), answer()]
    whole = Rig(tavily, *[[events_of(r)] for r in rounds])
    split = Rig(tavily, *[regrouped(events_of(r), seed) for r in rounds])
    expected = coalesce(events(await whole.stream(ask())))
    assert coalesce(events(await split.stream(ask()))) == expected


def events_of(steps: list[Step]) -> list[Event]:
    return [event for step in steps if isinstance(step, list) for event in step]


def regrouped(flat: list[Event], seed: int) -> list[Step]:
    """The same events in batches of random sizes (at least one event each)."""
    rng = random.Random(seed)
    out: list[Step] = []
    i = 0
    while i < len(flat):
        n = rng.randint(1, 4)
        out.append(flat[i:i + n])
        i += n
    return out
