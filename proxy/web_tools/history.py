"""Server tool blocks a client sends back in a later turn, as parts any backend understands.

Sans-I/O. An assistant turn from an earlier answer may hold ``server_tool_use`` and
``web_search_tool_result`` / ``web_fetch_tool_result`` blocks. A backend that ran no server
tool knows them as what they were to it: a function call and its result. So a
``server_tool_use`` becomes a ``ToolUsePart`` and a result a ``ToolResultPart`` holding the
text the model read when the proxy ran the call. (A request parser that meets a result part
inside an assistant turn splits the turn there: call, then result in a user turn, then the
rest.) The ``encrypted_content`` of results from Anthropic's own search is opaque, so for
those only the titles and URLs are kept; ours are recognised by their tool id.
"""

from __future__ import annotations

from typing import Any

from proxy.canonical import (
    ServerToolError,
    ServerToolResult,
    TextPart,
    ToolResultPart,
    ToolUsePart,
    WebFetchPage,
    WebSearchHit,
)
from proxy.web_tools.results import error_text, fetch_text, search_text
from proxy.web_tools.session import is_own_tool_id
from proxy.web_tools.urls import result_urls

_RESULTS = {"web_search_tool_result": "web_search", "web_fetch_tool_result": "web_fetch"}


def server_block_part(block: Any) -> ToolUsePart | ToolResultPart | None:
    """The part for one raw content block, or None if it is no (well-formed) server block of
    web search or fetch."""
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "server_tool_use":
        tool_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
        if isinstance(tool_id, str) and name in ("web_search", "web_fetch") \
                and isinstance(arguments, dict):
            return ToolUsePart(tool_id, name, arguments)
        return None
    tool_use_id = block.get("tool_use_id")
    if kind not in _RESULTS or not isinstance(tool_use_id, str):
        return None
    result = server_result(kind, block.get("content"), readable=is_own_tool_id(tool_use_id))
    if result is None:
        return None
    return ToolResultPart(tool_use_id, (TextPart(result_text(result)),),
                          is_error=isinstance(result, ServerToolError))


def server_result(kind: str, content: Any, *, readable: bool = True) -> ServerToolResult | None:
    """A result block's content as canonical content; ``readable=False`` blanks search
    snippets that are Anthropic's encrypted ones."""
    if isinstance(content, dict) and content.get("type") == f"{kind}_error":
        code = content.get("error_code")
        return ServerToolError(code) if isinstance(code, str) else None
    if kind == "web_search_tool_result" and isinstance(content, list):
        return tuple(_hit(item, readable) for item in content
                     if isinstance(item, dict) and isinstance(item.get("url"), str))
    if kind == "web_fetch_tool_result" and isinstance(content, dict):
        return _page(content)
    return None


def result_text(result: ServerToolResult) -> str:
    """What the model reads for a result (the same text the proxy gave it at the time)."""
    if isinstance(result, ServerToolError):
        return error_text(result)
    if isinstance(result, WebFetchPage):
        return fetch_text(result, cut=False)
    return search_text(None, result)


def server_block_urls(block: Any) -> set[str]:
    """The normalised URLs a raw result block made fetchable (for ``WebToolSession.learn``)."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in _RESULTS:
        return set()
    result = server_result(kind, block.get("content"))
    return result_urls(result) if result is not None else set()


def _hit(item: dict[str, Any], readable: bool) -> WebSearchHit:
    title, age, content = item.get("title"), item.get("page_age"), item.get("encrypted_content")
    return WebSearchHit(url=item["url"], title=title if isinstance(title, str) else item["url"],
                        encrypted_content=content if readable and isinstance(content, str)
                        else "",
                        page_age=age if isinstance(age, str) else None)


def _page(content: dict[str, Any]) -> WebFetchPage | None:
    url, document = content.get("url"), content.get("content")
    if not isinstance(url, str) or not isinstance(document, dict):
        return None
    source = document.get("source")
    text = ""  # a PDF comes as base64: not text a model can read here
    if isinstance(source, dict) and source.get("type") == "text" \
            and isinstance(source.get("data"), str):
        text = source["data"]
    title, retrieved = document.get("title"), content.get("retrieved_at")
    return WebFetchPage(url, text, title if isinstance(title, str) else None,
                        retrieved if isinstance(retrieved, str) else None)
