"""One client response's web tools, without the network: checked calls, Tavily answers turned
into result blocks and model text, max_uses, the counts, and URLs learnt from results."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    ServerToolError,
    ServerToolUse,
    TextPart,
    ToolArgsDelta,
    Usage,
    WebFetchPage,
    WebSearchHit,
)
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.web_tools.results import TavilyFailure
from proxy.web_tools.session import FetchCall, Outcome, Planned, SearchCall, WebToolSession
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.spec import FetchSpec, SearchSpec, UserLocation, WebToolsSpec
from tests.fakes.tavily import default_results
from tests.support import check_anthropic_stream, parse_anthropic_sse

SETTINGS = TavilySettings(api_key="tvly-k", max_results=4, fetch_max_chars=1000)
BOTH = WebToolsSpec(SearchSpec(), FetchSpec())


def search_answer(query: str, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"query": query, "answer": None, "images": [], "response_time": 0.1,
            "results": default_results(query) if results is None else results}


def extract_answer(url: str, text: str) -> dict[str, Any]:
    return {"results": [{"url": url, "raw_content": text, "images": []}],
            "failed_results": [], "response_time": 0.1}


def test_a_search_from_call_to_result() -> None:
    session = WebToolSession(BOTH, SETTINGS)
    planned = session.plan("web_search", '{"query": " aiohttp sse "}')
    assert planned == Planned("web_search", {"query": "aiohttp sse"}, call=SearchCall(
        "aiohttp sse", max_results=4, search_depth="basic", topic="general"))
    outcome = session.finish(planned, search_answer("aiohttp sse"))
    assert outcome.kind == "web_search_tool_result" and not outcome.is_error
    assert isinstance(outcome.result, tuple)
    first = outcome.result[0]
    assert first == WebSearchHit("https://site1.example.com/aiohttp-sse", "aiohttp sse (1)",
                                 "Snippet 1 about aiohttp sse.", None)
    model = orjson.loads(outcome.model_text)
    assert model["query"] == "aiohttp sse" and len(model["results"]) == 3
    assert model["results"][0] == {"title": first.title, "url": first.url, "page_age": None,
                                   "content": first.encrypted_content}
    assert session.usage == ServerToolUse(web_search_requests=1)


def test_the_client_settings_shape_the_tavily_call() -> None:
    spec = WebToolsSpec(SearchSpec(allowed_domains=("python.org", "example.com/blog"),
                                   user_location=UserLocation(country="DE"), max_results=10))
    call = WebToolSession(spec, SETTINGS).plan("web_search", {"query": "q"}).call
    assert call == SearchCall("q", max_results=10, search_depth="basic", topic="general",
                              include_domains=("python.org", "example.com"), country="germany")
    blocked = WebToolsSpec(SearchSpec(blocked_domains=("x.com", "example.com/ads"),
                                      user_location=UserLocation(country="ZZ")))
    news = TavilySettings(api_key="k", topic="news", search_depth="advanced")
    call = WebToolSession(blocked, news).plan("web_search", {"query": "q"}).call
    assert call == SearchCall("q", max_results=5, search_depth="advanced", topic="news",
                              exclude_domains=("x.com",))  # no country: Tavily's is general only


def test_results_outside_the_domain_lists_are_dropped() -> None:
    results = [{"title": "a", "url": "https://docs.python.org/3/", "content": "x"},
               {"title": "b", "url": "https://example.com/blog/1", "content": "y"},
               {"title": "c", "url": "https://example.com/shop", "content": "z"},
               {"title": "d", "url": "javascript:alert(1)", "content": "w"}]
    spec = WebToolsSpec(SearchSpec(allowed_domains=("python.org", "example.com/blog")))
    session = WebToolSession(spec, SETTINGS)
    outcome = session.finish(session.plan("web_search", {"query": "q"}),
                             search_answer("q", results))
    assert isinstance(outcome.result, tuple)
    assert [hit.url for hit in outcome.result] == ["https://docs.python.org/3/",
                                                   "https://example.com/blog/1"]


def test_news_results_carry_their_age() -> None:
    results = [{"title": "t", "url": "https://n.example/1", "content": "c", "score": 0.5,
                "published_date": "Tue, 04 Mar 2025 10:00:00 GMT"}]
    session = WebToolSession(BOTH, SETTINGS)
    outcome = session.finish(session.plan("web_search", {"query": "q"}),
                             search_answer("q", results))
    assert isinstance(outcome.result, tuple)
    assert outcome.result[0].page_age == "Tue, 04 Mar 2025 10:00:00 GMT"


@pytest.mark.parametrize(("name", "arguments", "shown"), [
    ("web_search", "{not json", {}),
    ("web_search", "[1, 2]", {}),
    ("web_search", {"q": "x"}, {"q": "x"}),
    ("web_search", {"query": "  "}, {"query": "  "}),
    ("web_fetch", {"url": 7}, {"url": 7}),
])
def test_bad_arguments_are_invalid_input(name: str, arguments: Any, shown: Any) -> None:
    session = WebToolSession(BOTH, SETTINGS)
    planned = session.plan(name, arguments)
    assert planned.call is None and planned.tool_input == shown
    outcome = session.finish(planned)
    assert outcome.result == ServerToolError("invalid_tool_input")
    assert orjson.loads(outcome.model_text)["error"] == "invalid_tool_input"
    assert session.usage == ServerToolUse()


def test_a_query_over_400_characters_is_too_long() -> None:
    planned = WebToolSession(BOTH, SETTINGS).plan("web_search", {"query": "x" * 401})
    assert planned.error == ServerToolError("query_too_long")


def test_a_tool_the_client_did_not_ask_for_is_not_run() -> None:
    session = WebToolSession(WebToolsSpec(search=SearchSpec()), SETTINGS)
    assert session.handles("web_search") and not session.handles("web_fetch")
    assert not session.handles("Bash")
    assert session.plan("web_fetch", {"url": "https://a.example/"}).error == ServerToolError(
        "invalid_tool_input")
    with pytest.raises(ValueError):
        session.plan("Bash", {})


def test_max_uses_counts_calls_sent_and_usage_counts_results() -> None:
    session = WebToolSession(WebToolsSpec(SearchSpec(max_uses=2)), SETTINGS)
    first = session.plan("web_search", {"query": "a"})
    session.finish(first, TavilyFailure("unavailable", 503))  # sent: it counts as a use
    second = session.plan("web_search", {"query": "b"})
    assert second.call is not None
    session.finish(second, search_answer("b"))
    third = session.plan("web_search", {"query": "c"})
    assert third == Planned("web_search", {"query": "c"},
                            error=ServerToolError("max_uses_exceeded"))
    outcome = session.finish(third, search_answer("c"))  # an answer cannot undo the refusal
    assert outcome.result == ServerToolError("max_uses_exceeded")
    assert "spent" in orjson.loads(outcome.model_text)["message"]
    assert session.usage == ServerToolUse(web_search_requests=1)


@pytest.mark.parametrize(("failure", "search_code", "fetch_code"), [
    (TavilyFailure("auth", 401), "unavailable", "unavailable"),
    (TavilyFailure("quota", 432), "unavailable", "unavailable"),
    (TavilyFailure("rate_limit", 429), "too_many_requests", "too_many_requests"),
    (TavilyFailure("unavailable", 502), "unavailable", "unavailable"),
    (TavilyFailure("timeout"), "unavailable", "unavailable"),
    (TavilyFailure("bad_request", 400), "invalid_tool_input", "url_not_accessible"),
    (TavilyFailure("bad_answer", 200), "unavailable", "unavailable"),
])
def test_tavily_failures_become_error_blocks(failure: TavilyFailure, search_code: str,
                                             fetch_code: str) -> None:
    session = WebToolSession(BOTH, SETTINGS, known_urls=["https://a.example/"])
    search = session.finish(session.plan("web_search", {"query": "q"}), failure)
    fetch = session.finish(session.plan("web_fetch", {"url": "https://a.example/"}), failure)
    assert (search.result, fetch.result) == (ServerToolError(search_code),
                                             ServerToolError(fetch_code))
    assert session.usage == ServerToolUse()


@pytest.mark.parametrize("answer", [{"results": "nope"}, ["x"], None])
def test_a_malformed_search_answer_is_unavailable(answer: Any) -> None:
    session = WebToolSession(BOTH, SETTINGS)
    outcome = session.finish(session.plan("web_search", {"query": "q"}), answer)
    assert outcome.result == ServerToolError("unavailable")


def test_fetch_only_what_the_conversation_holds_then_what_results_add() -> None:
    user = Message("user", (TextPart("start at https://user.example/start please"),))
    session = WebToolSession(BOTH, SETTINGS, [user])
    made_up = session.plan("web_fetch", {"url": "https://site1.example.com/q"})
    assert made_up.error == ServerToolError("url_not_in_prior_context")
    session.finish(session.plan("web_search", {"query": "q"}), search_answer("q"))
    planned = session.plan("web_fetch", '{"url": "https://site1.example.com/q#intro"}')
    assert planned == Planned("web_fetch", {"url": "https://site1.example.com/q#intro"},
                              call=FetchCall("https://site1.example.com/q", "site1.example.com",
                                             1000))
    text = "p" * 1500 + " https://linked.example/next"
    outcome = session.finish(planned, extract_answer("https://site1.example.com/q", text),
                             retrieved_at="2026-01-02T03:04:05Z")
    assert outcome.result == WebFetchPage("https://site1.example.com/q", "p" * 1000, None,
                                          "2026-01-02T03:04:05Z")
    model = orjson.loads(outcome.model_text)
    assert model["content"] == "p" * 1000 and "1000 characters" in model["note"]
    assert session.usage == ServerToolUse(1, 1)
    # the link was cut off with the rest of the page: not fetchable
    assert session.plan("web_fetch", {"url": "https://linked.example/next"}).error
    short = session.finish(session.plan("web_fetch", {"url": "https://user.example/start"}),
                           extract_answer("https://user.example/start",
                                          "see https://linked.example/next"))
    assert "note" not in orjson.loads(short.model_text)
    assert session.plan("web_fetch", {"url": "https://linked.example/next"}).call


def test_max_content_tokens_cuts_deeper_and_the_dns_check_can_refuse() -> None:
    spec = WebToolsSpec(fetch=FetchSpec(max_content_tokens=100))
    session = WebToolSession(spec, SETTINGS, known_urls=["https://a.example/"])
    planned = session.plan("web_fetch", {"url": "https://a.example/"})
    assert isinstance(planned.call, FetchCall) and planned.call.max_chars == 400
    refused = session.finish(planned, ServerToolError("url_not_allowed"))
    assert refused.result == ServerToolError("url_not_allowed")
    assert session.usage == ServerToolUse()


def test_a_page_tavily_could_not_read_is_not_accessible() -> None:
    session = WebToolSession(BOTH, SETTINGS, known_urls=["https://a.example/"])
    answer = {"results": [], "failed_results": [{"url": "https://a.example/",
                                                 "error": "Failed to fetch url"}]}
    outcome = session.finish(session.plan("web_fetch", {"url": "https://a.example/"}), answer)
    assert outcome.result == ServerToolError("url_not_accessible")


def test_outcomes_make_a_stream_the_validator_accepts() -> None:
    """The pieces as the loop will put them together: server_tool_use from ``plan``, the
    result block from ``finish``, the counts from ``usage``."""
    session = WebToolSession(WebToolsSpec(SearchSpec(max_uses=1), FetchSpec()), SETTINGS)
    events: list[Event] = [MessageStart("msg_1", "m", Usage())]
    calls = [("web_search", {"query": "q"}, search_answer("q")),
             ("web_search", {"query": "again"}, None),
             ("web_fetch", {"url": "https://site2.example.com/q"},
              extract_answer("https://site2.example.com/q", "page")),
             ("web_fetch", {"url": "http://127.0.0.1/"}, None)]
    for n, (name, arguments, answer) in enumerate(calls):
        planned = session.plan(name, arguments)
        tool_id, index = f"srvtoolu_{n}", 2 * n
        events += [BlockStart(index, "server_tool_use", tool_id, name),
                   ToolArgsDelta(index, orjson.dumps(planned.tool_input).decode()),
                   BlockStop(index)]
        outcome: Outcome = session.finish(planned, answer)
        events += [BlockStart(index + 1, outcome.kind, tool_id, result=outcome.result),
                   BlockStop(index + 1)]
    events += [MessageDelta("end_turn", Usage(server_tool_use=session.usage)), MessageStop()]
    frames = parse_anthropic_sse(AnthropicStreamEncoder().encode(events))
    check_anthropic_stream(frames)
    errors = [data["content_block"]["content"]["error_code"] for name, data in frames
              if name == "content_block_start"
              and isinstance(data["content_block"].get("content"), dict)
              and "error_code" in data["content_block"]["content"]]
    assert errors == ["max_uses_exceeded", "url_not_allowed"]
    assert frames[-2][1]["usage"]["server_tool_use"] == {"web_search_requests": 1,
                                                         "web_fetch_requests": 1}
