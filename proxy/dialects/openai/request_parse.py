"""OpenAI Chat Completions request body -> canonical Request (protocols.md 4.2).

Sans-I/O. What an Anthropic upstream cannot honour and dropping would change the answer
(``n`` > 1, ``logprobs``, audio in or out, custom tools) is a 400 naming the field;
what only tunes sampling or storage (``seed``, penalties, ``logit_bias``, ``store``,
``service_tier``, ``prediction``…) is dropped and listed in ``Request.dropped``.
``web_search_options`` is kept for the proxy's own web search (proxy/web_tools).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.fields import (
    MAX_JSON_DEPTH,
    check_depth,
    optional,
    optional_number,
    required,
    wrong_type,
)
from proxy.errors import InvalidRequest

_READ = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature",
    "top_p", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "reasoning_effort", "user", "safety_identifier", "stream", "stream_options", "n",
    "logprobs", "top_logprobs", "modalities", "audio", "web_search_options", "functions",
    "function_call", "reasoning",
})
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high",
            "xhigh": "high", "max": "high"}
ARGUMENTS_LEVEL = 6  # body, messages, a message, tool_calls, a call, function
_DATA_URL = re.compile(r"data:([\w.+/-]+);base64,(.*)", re.S)


def parse_request(body: dict[str, Any], *, default_model: str = "") -> Request:
    _refuse_what_cannot_be_honoured(body)
    model = optional(body, "model", str) or default_model
    if not model:
        raise InvalidRequest("model: field required (and no default MODEL is set).",
                             param="model")
    items = required(body, "messages", list)
    if not items:
        raise InvalidRequest("messages: at least one message is required.", param="messages")
    system, messages = _messages(items)
    tools = _tools(body)
    choice, parallel = _tool_choice(body.get("tool_choice") or body.get("function_call"))
    if optional(body, "parallel_tool_calls", bool) is False:
        parallel = False
    response_format = optional(body, "response_format", dict) or {}
    return Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=_max_tokens(body),
        stream=bool(optional(body, "stream", bool)),
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        stop_sequences=_stop(body.get("stop")),
        tools=tools,
        tool_choice=choice if tools else None,
        parallel_tool_calls=parallel if tools else None,
        reasoning_effort=_reasoning_effort(body),
        response_schema=_schema(response_format),
        json_object=response_format.get("type") == "json_object",
        user_id=optional(body, "user", str) or optional(body, "safety_identifier", str),
        dropped=tuple(sorted(k for k in body if k not in _READ)),
        web_search_options=optional(body, "web_search_options", dict),
    )


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a streaming client asked for the final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _refuse_what_cannot_be_honoured(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("n: only one choice per request is supported by this backend.",
                             param="n")
    for name in ("logprobs", "top_logprobs", "audio"):
        if body.get(name):
            raise InvalidRequest(f"{name}: not supported by this backend.", param=name)
    if "audio" in _strings(body.get("modalities"), "modalities"):
        raise InvalidRequest("modalities: audio output is not supported by this backend.",
                             param="modalities")


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = optional(body, name, int)
        if value is not None:
            if value < 1:
                raise InvalidRequest(f"{name}: must be at least 1.", param=name)
            return int(value)
    return None


def _messages(items: list[Any]) -> tuple[tuple[str, ...], tuple[Message, ...]]:
    """Leading system/developer messages become the system prompt; later ones stay in
    place as system messages; consecutive tool messages fold into one user turn."""
    system: list[str] = []
    messages: list[Message] = []
    function_call_id = "call_0"  # the deprecated function_call has none: make one per turn
    for i, item in enumerate(items):
        path = f"messages.{i}"
        if not isinstance(item, dict):
            raise wrong_type(path, "an object", item)
        role = required(item, "role", str, path)
        if role in ("system", "developer"):
            text = _text_only(item.get("content"), f"{path}.content")
            if text and not messages:
                system.append(text)
            elif text:
                messages.append(Message("system", (TextPart(text),)))
        elif role == "user":
            _append(messages, "user", _user_parts(item.get("content"), f"{path}.content"))
        elif role == "assistant":
            function_call_id = f"call_fn{i}"
            _append(messages, "assistant", _assistant_parts(item, path, function_call_id))
        elif role in ("tool", "function"):
            _append(messages, "user", (_tool_result(item, path, function_call_id),))
        else:
            raise InvalidRequest(f"{path}.role: unknown role {role!r}.", param=f"{path}.role")
    return tuple(system), tuple(messages)


def _append(messages: list[Message], role: str, parts: tuple[Part, ...]) -> None:
    if not parts:
        return
    if messages and messages[-1].role == role == "user":
        # Tool results and the user text after them are one Anthropic turn.
        messages[-1] = Message("user", messages[-1].parts + parts)
    else:
        messages.append(Message(role, parts))  # type: ignore[arg-type]


def _text_only(content: Any, path: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise wrong_type(path, "a string or an array of text parts", content)
    return "\n\n".join(str(p.get("text") or p.get("refusal") or "") for p in content
                       if isinstance(p, dict) and p.get("type") in ("text", "refusal"))


def _user_parts(content: Any, path: str) -> tuple[Part, ...]:
    if content is None or isinstance(content, str):
        return (TextPart(content),) if content else ()
    if not isinstance(content, list):
        raise wrong_type(path, "a string or an array of content parts", content)
    parts: list[Part] = []
    for i, part in enumerate(content):
        where = f"{path}.{i}"
        if not isinstance(part, dict):
            raise wrong_type(where, "a content part object", part)
        kind = required(part, "type", str, where)
        if kind == "text":
            text = required(part, "text", str, where)
            if text:
                parts.append(TextPart(text))
        elif kind == "image_url":
            parts.append(_image(required(part, "image_url", dict, where), f"{where}.image_url"))
        elif kind == "file":
            parts.append(_file(required(part, "file", dict, where), f"{where}.file"))
        else:
            raise InvalidRequest(f"{where}.type: {kind!r} parts are not supported by this "
                                 "backend.", param=f"{where}.type")
    return tuple(parts)


def _image(image: dict[str, Any], path: str) -> ImagePart:
    url = required(image, "url", str, path)
    match = _DATA_URL.match(url)
    if match:
        media_type = match.group(1)
        if media_type not in ("image/jpeg", "image/png", "image/gif", "image/webp"):
            raise InvalidRequest(f"{path}.url: image type {media_type} is not supported "
                                 "(jpeg, png, gif, webp are).", param=f"{path}.url")
        return ImagePart(media_type=media_type, data=match.group(2))
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url)
    raise InvalidRequest(f"{path}.url: expected a data: URL or an http(s) URL.",
                         param=f"{path}.url")


def _file(file: dict[str, Any], path: str) -> DocumentPart:
    data = optional(file, "file_data", str, path)
    if data is None:
        raise InvalidRequest(f"{path}.file_data: required; file_id cannot be fetched by this "
                             "backend.", param=f"{path}.file_data")
    match = _DATA_URL.match(data)
    if not match:
        raise InvalidRequest(f"{path}.file_data: expected a base64 data: URL.",
                             param=f"{path}.file_data")
    media_type, title = match.group(1), optional(file, "filename", str, path)
    if media_type == "application/pdf":
        return DocumentPart(media_type=media_type, data=match.group(2), title=title)
    if media_type.startswith("text/"):
        try:
            text = base64.b64decode(match.group(2)).decode("utf-8")
        except ValueError:
            raise InvalidRequest(f"{path}.file_data: not valid base64 UTF-8 text.",
                                 param=f"{path}.file_data") from None
        return DocumentPart(text=text, title=title)
    raise InvalidRequest(f"{path}.file_data: {media_type} files are not supported (PDF and "
                         "text are).", param=f"{path}.file_data")


def _assistant_parts(item: dict[str, Any], path: str, function_call_id: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    text = (_text_only(item.get("content"), f"{path}.content")
            or optional(item, "refusal", str, path))
    if text:
        parts.append(TextPart(text))
    calls = [(f"{path}.tool_calls.{j}", call)
             for j, call in enumerate(optional(item, "tool_calls", list, path) or ())]
    function_call = optional(item, "function_call", dict, path)
    if function_call:
        # The deprecated single function call has no id; the one made for its turn pairs
        # it with the "function" message that answers it.
        calls.append((f"{path}.function_call",
                      {"id": function_call_id, "function": function_call}))
    for j, (where, call) in enumerate(calls):
        if not isinstance(call, dict):
            raise wrong_type(where, "a tool call object", call)
        function = required(call, "function", dict, where)
        parts.append(ToolUsePart(optional(call, "id", str, where) or f"call_{j}",
                                 required(function, "name", str, f"{where}.function"),
                                 _arguments(function.get("arguments"),
                                            f"{where}.function.arguments")))
    return tuple(parts)


def _arguments(raw: Any, path: str) -> dict[str, Any]:
    """A call's arguments as an object. Text that is not a JSON object is kept as it came,
    under ``_raw``; an object too deep to be written again is a 400."""
    if not raw:
        return {}
    value = raw
    if isinstance(raw, str):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {"_raw": raw}
    if not isinstance(value, dict):
        return {"_raw": raw if isinstance(raw, str) else orjson.dumps(raw).decode()}
    # The arguments go upstream as a tool_use input, a few levels down in the body.
    check_depth(value, MAX_JSON_DEPTH - ARGUMENTS_LEVEL, path)
    return value


def _tool_result(item: dict[str, Any], path: str, function_call_id: str) -> ToolResultPart:
    call_id = item.get("tool_call_id") or (
        function_call_id if item.get("role") == "function" else None)
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{path}.tool_call_id: field required.",
                             param=f"{path}.tool_call_id")
    text = _text_only(item.get("content"), f"{path}.content")
    return ToolResultPart(call_id, (TextPart(text),) if text else ())


def _tools(body: dict[str, Any]) -> tuple[Tool, ...]:
    items = optional(body, "tools", list) or [
        {"type": "function", "function": f} for f in optional(body, "functions", list) or []]
    tools = []
    for i, item in enumerate(items):
        path = f"tools.{i}"
        if not isinstance(item, dict):
            raise wrong_type(path, "a tool object", item)
        if item.get("type", "function") != "function":
            raise InvalidRequest(f"{path}.type: only function tools are supported by this "
                                 "backend.", param=f"{path}.type")
        function = required(item, "function", dict, path)
        schema = optional(function, "parameters", dict, f"{path}.function")
        tools.append(Tool(required(function, "name", str, f"{path}.function"),
                          optional(function, "description", str, f"{path}.function"),
                          schema or {"type": "object", "properties": {}}))
    return tuple(tools)


def _tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        kinds = {"auto": "auto", "required": "any", "none": "none"}
        if value not in kinds:
            raise InvalidRequest("tool_choice: must be auto, required, none or a named "
                                 "function.", param="tool_choice")
        return ToolChoice(kinds[value]), None  # type: ignore[arg-type]
    if not isinstance(value, dict):
        raise wrong_type("tool_choice", "a string or an object", value)
    if value.get("type") == "allowed_tools":
        allowed = optional(value, "allowed_tools", dict, "tool_choice") or {}
        mode = allowed.get("mode")
        return ToolChoice("any" if mode == "required" else "auto"), None
    function = value.get("function") if "function" in value else value
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest("tool_choice.function.name: field required.",
                             param="tool_choice.function.name")
    return ToolChoice("tool", name), None


def _stop(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(_strings(value, "stop", "a string or an array of strings"))


def _strings(value: Any, path: str, expected: str = "an array of strings") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise wrong_type(path, expected, value)
    return value


def _reasoning_effort(body: dict[str, Any]) -> str | None:
    """``reasoning_effort``, or ``reasoning: {effort}`` as newer clients send it (Open
    WebUI, the Responses API's habit)."""
    if body.get("reasoning_effort"):
        return _effort(optional(body, "reasoning_effort", str), "reasoning_effort")
    reasoning = optional(body, "reasoning", dict) or {}
    return _effort(optional(reasoning, "effort", str, "reasoning"), "reasoning.effort")


def _effort(value: str | None, path: str) -> str | None:
    if value is None or value == "none":
        return None
    if value not in _EFFORTS:
        raise InvalidRequest(f"{path}: must be one of none, minimal, low, medium, high, "
                             "xhigh, max.", param=path)
    return _EFFORTS[value]


def _schema(response_format: dict[str, Any]) -> dict[str, Any] | None:
    if response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise InvalidRequest("response_format.json_schema.schema: field required.",
                             param="response_format.json_schema.schema")
    return schema
