"""The web tool loop through the real hook (``Upstreams.stream``) and the real failover,
with scripted backends (no upstream port) and the fake Tavily server: rounds, renumbering,
the next round's conversation, usage sums, max_uses, the rounds bound, a client tool in the
same round, and the same events however the rounds are batched."""

from __future__ import annotations

import random
from dataclasses import replace

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    Event,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    ServerToolError,
    ServerToolUse,
    TextDelta,
    TextPart,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
    Usage,
    coalesce,
)
from proxy.web_tools.loop import web_tool_stream
from proxy.web_tools.tavily import TavilyClient
from tests.fakes.backend import Step
from tests.fakes.tavily import FakeTavily
from tests.support import check_anthropic_stream
from tests.web_tools.rig import (
    CALL,
    SEARCH_TOOL,
    WEATHER,
    Rig,
    answer,
    ask,
    blocks,
    calls_round,
    collected,
    events,
)

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


async def test_a_forced_web_search_is_forced_once(tavily: TavilyClient) -> None:
    rig = Rig(tavily, calls_round(("call_1", "web_search", {"query": "q"})), answer())
    forced = replace(ask(), tool_choice=ToolChoice("tool", "web_search"))
    await rig.stream(forced)
    first, second = (played.request for played in rig.one.calls)
    assert first.tool_choice == ToolChoice("tool", "web_search")
    assert second.tool_choice == ToolChoice("auto")
