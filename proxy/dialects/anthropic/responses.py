"""Anthropic-shaped JSON bodies: a whole message, an error, a model list, a token count.

Sans-I/O. The shapes are the ones the ``anthropic`` SDK validates (protocols.md 1.4, 1.6,
1.7).
"""

from __future__ import annotations

from typing import Any

from proxy.canonical import CollectedMessage

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
        else:
            content.append({"type": "tool_use", "id": block.tool_id, "name": block.tool_name,
                            "input": block.tool_input})
    usage = message.usage
    return {
        "id": message.id, "type": "message", "role": "assistant", "model": message.model,
        "content": content, "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "usage": {"input_tokens": usage.input_tokens,
                  "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                  "cache_read_input_tokens": usage.cache_read_input_tokens,
                  "output_tokens": usage.output_tokens},
    }


def models_body(models: list[tuple[str, str]]) -> dict[str, Any]:
    """``models``: (id, display name) pairs."""
    data = [{"type": "model", "id": model_id, "display_name": name,
             "created_at": "2025-01-01T00:00:00Z"} for model_id, name in models]
    return {"data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def count_tokens_body(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}
