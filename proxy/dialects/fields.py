"""Typed reads of a parsed JSON body that fail with a 400 naming the exact field.

Sans-I/O. Every inbound dialect validates through these, so an error always says where
(``messages.3.content.0.text``) and what was expected, in the same words.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import InvalidRequest

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", list: "an array",
               dict: "an object"}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says why not."""
    if not raw:
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def wrong_type(path: str, expected: str, value: Any) -> InvalidRequest:
    got = "null" if value is None else type(value).__name__
    return InvalidRequest(f"{path}: expected {expected}, got {got}.", param=path)


def required(obj: dict[str, Any], key: str, kind: type, path: str = "") -> Any:
    where = f"{path}.{key}" if path else key
    if key not in obj:
        raise InvalidRequest(f"{where}: field required.", param=where)
    return _check(obj[key], kind, where)


def optional(obj: dict[str, Any], key: str, kind: type, path: str = "") -> Any:
    value = obj.get(key)
    if value is None:
        return None
    return _check(value, kind, f"{path}.{key}" if path else key)


def optional_number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    return float(value)


def _check(value: Any, kind: type, where: str) -> Any:
    # bool is an int in Python; JSON keeps them apart, and so do we.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise wrong_type(where, _TYPE_NAMES.get(kind, kind.__name__), value)
    return value
