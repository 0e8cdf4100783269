"""Server tool blocks through both client dialects, read back by the official SDKs.

The Anthropic SDK's stream helper must accumulate what our encoder writes into
``ServerToolUseBlock``, ``WebSearchToolResultBlock`` and ``WebFetchToolResultBlock``; its
strict validation must accept the non-streaming body; the OpenAI SDK must read the search
results as ``url_citation`` annotations and see nothing else of the server tools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from anthropic.types import (
    DocumentBlock,
    PlainTextSource,
    ServerToolUseBlock,
    TextBlock,
    WebFetchBlock,
    WebFetchToolResultBlock,
    WebFetchToolResultErrorBlock,
    WebSearchResultBlock,
    WebSearchToolResultBlock,
    WebSearchToolResultErrorObject,
)

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    ServerToolError,
    ServerToolUse,
    TextDelta,
    ToolArgsDelta,
    Usage,
    WebFetchPage,
    WebSearchHit,
)
from proxy.dialects.anthropic.responses import message_body
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.openai.responses import completion_body
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder
from tests.support import check_anthropic_stream, check_openai_stream, parse_anthropic_sse

HITS = (
    WebSearchHit("https://docs.aiohttp.org/en/stable/streams.html", "Streaming API",
                 "aiohttp streams bytes with iter_any.", "2 days ago"),
    WebSearchHit("https://example.org/sse", "SSE in Python", "Server-sent events…"),
)
PAGE = WebFetchPage("https://example.org/sse", "# SSE\nframes end with a blank line",
                    "SSE in Python", "2026-01-02T03:04:05Z")
USAGE = Usage(input_tokens=120, output_tokens=40,
              server_tool_use=ServerToolUse(web_search_requests=1, web_fetch_requests=1))


def web_turn(search: Any = HITS, fetch: Any = PAGE, usage: Usage = USAGE) -> list[Event]:
    """Text, a search and its results, text quoting a result URL, a fetch and its page, the
    answer: what the web tools loop sends a client."""
    return [
        MessageStart("msg_web", "claude-x", Usage(input_tokens=120)),
        BlockStart(0, "text"), TextDelta(0, "Let me look."), BlockStop(0),
        BlockStart(1, "server_tool_use", "srvtoolu_01", "web_search"),
        ToolArgsDelta(1, '{"query": "aiohttp'), ToolArgsDelta(1, ' streaming"}'), BlockStop(1),
        BlockStart(2, "web_search_tool_result", "srvtoolu_01", result=search), BlockStop(2),
        BlockStart(3, "text"), TextDelta(3, "See https://example.org/sse for "),
        TextDelta(3, "details."), BlockStop(3),
        BlockStart(4, "server_tool_use", "srvtoolu_02", "web_fetch"),
        ToolArgsDelta(4, '{"url": "https://example.org/sse"}'), BlockStop(4),
        BlockStart(5, "web_fetch_tool_result", "srvtoolu_02", result=fetch), BlockStop(5),
        BlockStart(6, "text"), TextDelta(6, " Frames end with a blank line."), BlockStop(6),
        MessageDelta("end_turn", usage), MessageStop(),
    ]


Serve = Callable[[bytes, str], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """A one-body HTTP server on 127.0.0.1: every POST gets ``body`` with ``content_type``."""
    runners: list[web.AppRunner] = []

    async def start(body: bytes, content_type: str) -> str:
        async def answer(request: web.Request) -> web.StreamResponse:
            await request.read()
            response = web.StreamResponse(headers={"Content-Type": content_type})
            await response.prepare(request)
            for at in range(0, len(body), 97):  # in pieces, as a network would
                await response.write(body[at:at + 97])
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_post("/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def anthropic_client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="sk-test", max_retries=0,
                                    _strict_response_validation=True)


def openai_client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0,
                              _strict_response_validation=True)


ASK: dict[str, Any] = {"model": "claude-x", "max_tokens": 100,
                       "messages": [{"role": "user", "content": "how do I stream?"}]}


def check_message(message: Any, search: Any = HITS, fetch: Any = PAGE) -> None:
    """The SDK's own types, with the fields we sent."""
    kinds = [TextBlock, ServerToolUseBlock, WebSearchToolResultBlock, TextBlock,
             ServerToolUseBlock, WebFetchToolResultBlock, TextBlock]
    assert len(message.content) == len(kinds)
    for block, kind in zip(message.content, kinds, strict=True):
        assert isinstance(block, kind), (block, kind)  # the stream helper's Parsed* subclass
    use = message.content[1]
    assert (use.id, use.name, use.input) == ("srvtoolu_01", "web_search",
                                             {"query": "aiohttp streaming"})
    assert message.content[4].input == {"url": "https://example.org/sse"}
    results = message.content[2]
    assert results.tool_use_id == "srvtoolu_01"
    if isinstance(search, ServerToolError):
        assert isinstance(results.content, WebSearchToolResultErrorObject)
        assert results.content.error_code == search.error_code
    else:
        assert [type(hit) for hit in results.content] == [WebSearchResultBlock] * len(search)
        assert [(h.url, h.title, h.encrypted_content, h.page_age) for h in results.content] \
            == [(h.url, h.title, h.encrypted_content, h.page_age) for h in search]
    fetched = message.content[5]
    assert fetched.tool_use_id == "srvtoolu_02"
    if isinstance(fetch, ServerToolError):
        assert isinstance(fetched.content, WebFetchToolResultErrorBlock)
        assert fetched.content.error_code == fetch.error_code
    else:
        assert isinstance(fetched.content, WebFetchBlock)
        assert (fetched.content.url, fetched.content.retrieved_at) == (fetch.url,
                                                                       fetch.retrieved_at)
        document = fetched.content.content
        assert isinstance(document, DocumentBlock) and document.title == fetch.title
        assert isinstance(document.source, PlainTextSource)
        assert document.source.data == fetch.text


ERRORS = [(HITS, PAGE), (ServerToolError("max_uses_exceeded"), ServerToolError("url_not_allowed")),
          (ServerToolError("too_many_requests"), ServerToolError("url_not_in_prior_context"))]


@pytest.mark.parametrize(("search", "fetch"), ERRORS)
async def test_the_anthropic_stream_helper_accumulates_server_blocks(
        serve: Serve, search: Any, fetch: Any) -> None:
    raw = AnthropicStreamEncoder().encode(web_turn(search, fetch))
    check_anthropic_stream(parse_anthropic_sse(raw))
    url = await serve(raw, "text/event-stream")
    async with anthropic_client(url) as api, api.messages.stream(**ASK) as stream:
        message = await stream.get_final_message()
    check_message(message, search, fetch)
    counts = message.usage.server_tool_use
    assert counts is not None and (counts.web_search_requests, counts.web_fetch_requests) == (1, 1)
    assert message.stop_reason == "end_turn"


async def test_the_anthropic_body_parses_with_the_sdk_types(serve: Serve) -> None:
    collector = Collector()
    collector.feed(web_turn())
    assert collector.message.complete
    body = message_body(collector.message)
    url = await serve(orjson.dumps(body), "application/json")
    async with anthropic_client(url) as api:
        message = await api.messages.create(**ASK)
    check_message(message)
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


@pytest.mark.parametrize("counts", [None, ServerToolUse(0, 0)])
def test_usage_without_server_tool_calls_is_unchanged_on_the_wire(
        counts: ServerToolUse | None) -> None:
    usage = Usage(input_tokens=3, output_tokens=4, server_tool_use=counts)
    events: list[Event] = [MessageStart("m", "x", usage), BlockStart(0, "text"),
                           TextDelta(0, "hi"), BlockStop(0), MessageDelta("end_turn", usage),
                           MessageStop()]
    frames = parse_anthropic_sse(AnthropicStreamEncoder().encode(events))
    assert "server_tool_use" not in frames[0][1]["message"]["usage"]
    assert "server_tool_use" not in frames[-2][1]["usage"]
    collector = Collector()
    collector.feed(events)
    assert "server_tool_use" not in message_body(collector.message)["usage"]
    assert "annotations" not in completion_body(collector.message, completion_id="c",
                                                created=1)["choices"][0]["message"]


def test_the_collector_keeps_server_blocks() -> None:
    collector = Collector()
    collector.feed(web_turn())
    blocks = collector.message.blocks
    assert [b.kind for b in blocks] == ["text", "server_tool_use", "web_search_tool_result",
                                        "text", "server_tool_use", "web_fetch_tool_result",
                                        "text"]
    assert blocks[1].tool_input == {"query": "aiohttp streaming"}
    assert blocks[2].result == HITS and blocks[2].tool_id == "srvtoolu_01"
    assert blocks[5].result == PAGE and blocks[5].text == ""
    assert collector.message.usage.server_tool_use == ServerToolUse(1, 1)


def test_a_result_block_without_content_is_refused() -> None:
    with pytest.raises(AssertionError):
        AnthropicStreamEncoder().encode([BlockStart(0, "web_search_tool_result", "srvtoolu_1")])


def test_the_validator_refuses_a_result_nobody_asked_for() -> None:
    events = web_turn()
    events[5] = BlockStart(2, "web_search_tool_result", "srvtoolu_99", result=HITS)
    with pytest.raises(AssertionError):
        check_anthropic_stream(parse_anthropic_sse(AnthropicStreamEncoder().encode(events)))


# --- OpenAI clients ----------------------------------------------------------------------

ANSWER = "Let me look.See https://example.org/sse for details. Frames end with a blank line."
AFTER = ANSWER.index("See")  # where the text written with the results at hand begins


def expected_citations() -> list[tuple[int, int, str, str]]:
    quoted = ANSWER.index("https://example.org/sse")
    return [(AFTER, len(ANSWER), HITS[0].title, HITS[0].url),  # not quoted: the whole answer
            (quoted, quoted + len(HITS[1].url), HITS[1].title, HITS[1].url)]


def citations(message: Any) -> list[tuple[int, int, str, str]]:
    assert all(a.type == "url_citation" for a in message.annotations)
    return [(a.url_citation.start_index, a.url_citation.end_index, a.url_citation.title,
             a.url_citation.url) for a in message.annotations]


async def test_the_openai_stream_helper_reads_citations_and_no_server_tools(
        serve: Serve) -> None:
    encoder = OpenAIStreamEncoder(chunk_id="chatcmpl-1", model="gpt-x", include_usage=True)
    raw = encoder.encode(web_turn())
    chunks = check_openai_stream(raw)
    assert sum("annotations" in c["choices"][0]["delta"] for c in chunks if c["choices"]) == 1
    url = await serve(raw, "text/event-stream")
    async with openai_client(url) as api, api.chat.completions.stream(
            model="gpt-x", messages=[{"role": "user", "content": "how?"}]) as stream:
        completion = await stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == ANSWER
    assert not message.tool_calls
    assert citations(message) == expected_citations()
    assert completion.choices[0].finish_reason == "stop"


async def test_the_openai_body_carries_citations(serve: Serve) -> None:
    collector = Collector()
    collector.feed(web_turn())
    body = completion_body(collector.message, completion_id="chatcmpl-1", created=1)
    url = await serve(orjson.dumps(body), "application/json")
    async with openai_client(url) as api:
        completion = await api.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "how?"}])
    message = completion.choices[0].message
    assert message.content == ANSWER and not message.tool_calls
    assert citations(message) == expected_citations()


def test_failed_searches_leave_no_annotations() -> None:
    events = web_turn(search=ServerToolError("unavailable"))
    encoder = OpenAIStreamEncoder(chunk_id="chatcmpl-1", model="gpt-x", include_usage=False)
    chunks = check_openai_stream(encoder.encode(events), include_usage=False)
    assert not any("annotations" in c["choices"][0]["delta"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == ANSWER
