"""Anthropic-shaped JSON bodies: a whole message, an error, a model list, a token count.

Sans-I/O. The shapes are the ones the ``anthropic`` SDK validates (protocols.md 1.4, 1.6,
1.7).
"""

from __future__ import annotations

from typing import Any

from proxy.canonical import (
    CollectedMessage,
    ServerToolError,
    ServerToolResult,
    Usage,
    WebFetchPage,
)

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "api_error": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
}


def error_type(kind: str) -> str:
    return _ERROR_TYPES.get(kind, "api_error")


def error_body(kind: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error",
                            "error": {"type": error_type(kind), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def message_body(message: CollectedMessage) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in message.blocks:
        if block.kind == "text":
            content.append({"type": "text", "text": block.text})
        elif block.kind == "thinking":
            content.append({"type": "thinking", "thinking": block.text,
                            "signature": block.signature})
        elif block.kind == "tool_use" or block.kind == "server_tool_use":
            content.append({"type": block.kind, "id": block.tool_id, "name": block.tool_name,
                            "input": block.tool_input})
        elif block.result is not None:
            content.append(result_block(block.kind, block.tool_id, block.result))
    usage = message.usage
    usage_body: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens}
    add_server_tool_use(usage_body, usage)
    return {
        "id": message.id, "type": "message", "role": "assistant", "model": message.model,
        "content": content, "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "usage": usage_body,
    }


def add_server_tool_use(body: dict[str, Any], usage: Usage) -> None:
    """``usage.server_tool_use`` only when a server tool actually ran, so that a response
    without one looks exactly as it always did."""
    counts = usage.server_tool_use
    if counts is not None and (counts.web_search_requests or counts.web_fetch_requests):
        body["server_tool_use"] = {"web_search_requests": counts.web_search_requests,
                                   "web_fetch_requests": counts.web_fetch_requests}


def result_block(kind: str, tool_use_id: str, result: ServerToolResult) -> dict[str, Any]:
    """A ``web_search_tool_result`` or ``web_fetch_tool_result`` block, whole, as the SDK's
    ``WebSearchToolResultBlock`` / ``WebFetchToolResultBlock`` types have it."""
    return {"type": kind, "tool_use_id": tool_use_id, "content": _result_content(kind, result)}


def _result_content(kind: str, result: ServerToolResult) -> Any:
    if isinstance(result, ServerToolError):
        return {"type": f"{kind}_error", "error_code": result.error_code}
    if isinstance(result, WebFetchPage):
        document: dict[str, Any] = {"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": result.text}}
        if result.title is not None:
            document["title"] = result.title
        page: dict[str, Any] = {"type": "web_fetch_result", "url": result.url,
                                "content": document}
        if result.retrieved_at is not None:
            page["retrieved_at"] = result.retrieved_at
        return page
    return [{"type": "web_search_result", "url": hit.url, "title": hit.title,
             "encrypted_content": hit.encrypted_content, "page_age": hit.page_age}
            for hit in result]


def models_body(models: list[tuple[str, str]]) -> dict[str, Any]:
    """``models``: (id, display name) pairs."""
    data = [{"type": "model", "id": model_id, "display_name": name,
             "created_at": "2025-01-01T00:00:00Z"} for model_id, name in models]
    return {"data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def count_tokens_body(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}
