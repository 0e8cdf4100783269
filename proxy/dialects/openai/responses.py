"""OpenAI-shaped JSON bodies: an error and a model list (protocols.md 2.5, 2.7).

Sans-I/O.
"""

from __future__ import annotations

from typing import Any

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "api_error": "server_error",
    "overloaded": "server_error",
    "timeout": "timeout",
}
_ERROR_CODES = {"not_found": "model_not_found", "rate_limit": "rate_limit_exceeded",
                "request_too_large": "request_too_large", "authentication": "invalid_api_key"}


def error_body(kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _ERROR_TYPES.get(kind, "server_error"),
                      "param": param, "code": _ERROR_CODES.get(kind)}}


def models_body(models: list[tuple[str, str]]) -> dict[str, Any]:
    """``models``: (id, display name) pairs; OpenAI's list has no display names."""
    return {"object": "list", "data": [
        {"id": model_id, "object": "model", "created": 1735689600, "owned_by": "llm-dialect-proxy"}
        for model_id, _ in models]}
