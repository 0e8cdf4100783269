"""Typed reads of a parsed JSON body that fail with a 400 naming the exact field.

Sans-I/O. Every inbound dialect validates through these, so an error always says where
(``messages.3.content.0.text``) and what was expected, in the same words.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import InvalidRequest

# How deep a body may nest. orjson reads 1024 levels but writes only 254, and a parsed
# request is written again (rendered for the upstream, or relayed with another model name)
# a few levels deeper than it came: the limit leaves that room.
MAX_JSON_DEPTH = 200
_ORJSON_WRITE_DEPTH = 254
_PATH_SHOWN = 8  # segments of a too-deep value's path named in the error
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
    check_depth(body)
    return body


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH, path: str = "") -> None:
    """A 400 naming where ``value`` nests deeper than ``limit`` levels (``value`` itself is
    level 1). Checked by orjson in C: the value, wrapped in the levels that the limit leaves
    under orjson's own, must still be writable; only a refusal walks it for the path."""
    wrapped = value
    for _ in range(_ORJSON_WRITE_DEPTH - limit):
        wrapped = (wrapped,)
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        where, cut = _too_deep(value, limit, path)
        raise InvalidRequest(f"{where + cut if where else 'The request body'}: JSON nested "
                             f"deeper than {limit} levels; at most {limit} are accepted.",
                             param=where or None) from None


def _too_deep(value: Any, limit: int, path: str) -> tuple[str, str]:
    """The path of the first container nested past ``limit``: its first segments, and
    "…" if there are more."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, segments = stack.pop()
        if depth > limit:
            shown = [path] if path else []
            shown += segments[:_PATH_SHOWN]
            return ".".join(shown), "…" if len(segments) > _PATH_SHOWN else ""
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*segments, str(key))))
    return path, ""


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
