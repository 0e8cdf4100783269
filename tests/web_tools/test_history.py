"""Server tool blocks sent back in a later turn become a function call and its result, with
the text the model read; ids mark the proxy's own blocks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.canonical import (
    Collector,
    Message,
    ServerToolError,
    TextPart,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.anthropic.responses import message_body
from proxy.web_tools.history import server_block_part, server_block_urls
from proxy.web_tools.results import fetch_text, search_text
from proxy.web_tools.session import WebToolSession, is_own_tool_id, server_tool_id
from proxy.web_tools.settings import TavilySettings
from proxy.web_tools.spec import FetchSpec, SearchSpec, SourceFilter, UrlSources, WebToolsSpec
from tests.web_tools.test_server_blocks import HITS, PAGE, web_turn

OURS = server_tool_id("msg_01XFDUDYJgAACzvnptvVoYEL", 0)


def test_server_tool_ids() -> None:
    assert OURS.startswith("srvtoolu_") and is_own_tool_id(OURS)
    assert server_tool_id("msg_01XFDUDYJgAACzvnptvVoYEL", 1) != OURS
    assert server_tool_id("msg-a.b/c", 3).removeprefix("srvtoolu_").replace("_", "").isalnum()
    assert not is_own_tool_id("srvtoolu_01WYG3ziw53XMcoyKL4XcZmE")


def blocks_of(events: list[Any], tool_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Our answer's content as a client sends it back, with the ids swapped as given."""
    collector = Collector()
    collector.feed(events)
    raw = orjson.dumps(message_body(collector.message)["content"]).decode()
    for old, new in tool_ids.items():
        raw = raw.replace(old, new)
    return orjson.loads(raw)  # type: ignore[no-any-return]


def test_our_blocks_come_back_as_the_call_and_the_text_the_model_read() -> None:
    blocks = blocks_of(web_turn(), {"srvtoolu_01": OURS, "srvtoolu_02": OURS + "x"})
    parts = [server_block_part(block) for block in blocks]
    assert parts[0] is None and parts[3] is None  # text blocks are the parser's
    assert parts[1] == ToolUsePart(OURS, "web_search", {"query": "aiohttp streaming"})
    assert parts[2] == ToolResultPart(OURS, (TextPart(search_text(None, HITS)),))
    assert parts[4] == ToolUsePart(OURS + "x", "web_fetch", {"url": "https://example.org/sse"})
    assert parts[5] == ToolResultPart(OURS + "x", (TextPart(fetch_text(PAGE, cut=False)),))
    snippets = [r["content"] for r in orjson.loads(parts[2].content[0].text)["results"]]  # type: ignore[union-attr]
    assert snippets == [hit.encrypted_content for hit in HITS]


def test_anthropics_encrypted_snippets_are_not_given_to_another_model() -> None:
    block = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01WYG3ziw53XMcoyKL4Xc",
             "content": [{"type": "web_search_result", "url": "https://a.example/",
                          "title": "A", "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1",
                          "page_age": "April 30, 2025"}]}
    part = server_block_part(block)
    assert isinstance(part, ToolResultPart)
    (result,) = orjson.loads(part.content[0].text)["results"]  # type: ignore[union-attr]
    assert result == {"title": "A", "url": "https://a.example/", "page_age": "April 30, 2025",
                      "content": ""}


def test_errors_come_back_as_error_results() -> None:
    block = {"type": "web_fetch_tool_result", "tool_use_id": OURS,
             "content": {"type": "web_fetch_tool_result_error",
                         "error_code": "url_not_in_prior_context"}}
    part = server_block_part(block)
    assert isinstance(part, ToolResultPart) and part.is_error
    assert "url_not_in_prior_context" in part.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("block", [
    None, "text", {"type": "text", "text": "hi"},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "code_execution", "input": {}},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": "q"},
    {"type": "web_search_tool_result", "content": []},
    {"type": "web_search_tool_result", "tool_use_id": "x", "content": "nope"},
    {"type": "web_fetch_tool_result", "tool_use_id": "x", "content": {"url": 1}},
    {"type": "code_execution_tool_result", "tool_use_id": "x", "content": {}},
])
def test_anything_else_is_left_alone(block: Any) -> None:
    assert server_block_part(block) is None


def test_urls_from_earlier_results_are_fetchable() -> None:
    blocks = blocks_of(web_turn(), {})
    urls = set().union(*(server_block_urls(block) for block in blocks))
    assert urls == {"https://docs.aiohttp.org/en/stable/streams.html", "https://example.org/sse"}
    session = WebToolSession(WebToolsSpec(fetch=FetchSpec()), TavilySettings(api_key="k"))
    assert session.plan("web_fetch", {"url": "https://example.org/sse"}).error
    session.learn(urls)
    assert session.plan("web_fetch", {"url": "https://example.org/sse"}).call


def test_server_tool_results_none_keeps_results_from_making_urls_fetchable() -> None:
    spec = WebToolsSpec(SearchSpec(), FetchSpec(url_sources=UrlSources(
        server_tool_results=SourceFilter("none"))))
    user = Message("user", (TextPart("see https://user.example/"),))
    session = WebToolSession(spec, TavilySettings(api_key="k"), [user])
    planned = session.plan("web_search", {"query": "q"})
    session.finish(planned, {"results": [{"url": "https://found.example/", "title": "F",
                                          "content": "c"}]})
    assert session.plan("web_fetch", {"url": "https://found.example/"}).error == \
        ServerToolError("url_not_in_prior_context")
    assert session.plan("web_fetch", {"url": "https://user.example/"}).call


def test_a_fetched_pdf_is_not_read_as_text() -> None:
    block = {"type": "web_fetch_tool_result", "tool_use_id": OURS, "content": {
        "type": "web_fetch_result", "url": "https://a.example/x.pdf",
        "content": {"type": "document", "source": {"type": "base64",
                                                   "media_type": "application/pdf",
                                                   "data": "JVBERi0xLjQK"}}}}
    part = server_block_part(block)
    assert isinstance(part, ToolResultPart)
    assert orjson.loads(part.content[0].text)["content"] == ""  # type: ignore[union-attr]
