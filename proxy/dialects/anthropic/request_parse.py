"""Anthropic Messages request body -> canonical Request.

Sans-I/O. Strict where the API is strict (a missing or mistyped required field is a 400
naming it), lenient everywhere else: unknown block types and fields the canonical model
has no room for are dropped on purpose and listed in ``Request.dropped`` for the logs,
never forwarded to break an upstream (peers.md lesson 23). What Claude Code sends is the
reference (research/claude-code.md, "What a proxy must support").
"""

from __future__ import annotations

from typing import Any, Literal

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    ThinkingPart,
    Tool,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.fields import optional, optional_number, required, wrong_type
from proxy.errors import InvalidRequest
from proxy.web_tools.history import server_block_part
from proxy.web_tools.spec import web_tool_kind

BILLING_PREFIX = "x-anthropic-billing-header:"
# Fields we read; every other top-level field is dropped and reported.
_KNOWN = frozenset({
    "model", "messages", "system", "max_tokens", "stream", "temperature", "top_p",
    "stop_sequences", "tools", "tool_choice", "thinking", "output_config", "metadata",
})
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def parse_request(body: dict[str, Any], *, for_counting: bool = False) -> Request:
    """Validate and translate. ``for_counting``: the count_tokens body (no max_tokens)."""
    dropped: list[str] = sorted(k for k in body if k not in _KNOWN)
    model = required(body, "model", str)
    max_tokens = None if for_counting else required(body, "max_tokens", int)
    if max_tokens is not None and max_tokens < 0:
        raise InvalidRequest("max_tokens: must be 0 or more.", param="max_tokens")
    messages = _messages(required(body, "messages", list), dropped)
    raw_tools = optional(body, "tools", list) or []
    tools = _tools(raw_tools, dropped)
    server_tools = tuple(t for t in raw_tools if web_tool_kind(t) is not None)
    choice, parallel = _tool_choice(optional(body, "tool_choice", dict))
    output_config = optional(body, "output_config", dict) or {}
    metadata = optional(body, "metadata", dict) or {}
    user_id = metadata.get("user_id")
    return Request(
        model=model,
        messages=messages,
        system=_system(body.get("system")),
        max_tokens=max_tokens,
        stream=bool(optional(body, "stream", bool)),
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        stop_sequences=tuple(_strings(body.get("stop_sequences"), "stop_sequences")),
        tools=tools,
        tool_choice=choice if tools or server_tools else None,
        parallel_tool_calls=parallel if tools or server_tools else None,
        reasoning_effort=_reasoning_effort(optional(body, "thinking", dict), output_config),
        response_schema=_response_schema(output_config),
        user_id=user_id if isinstance(user_id, str) and user_id else None,
        dropped=tuple(dropped),
        server_tools=server_tools,
    )


def _system(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, list):
        raise wrong_type("system", "a string or an array of text blocks", value)
    texts = []
    for i, block in enumerate(value):
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise wrong_type(f"system.{i}", "a text block", block)
        # Claude Code's per-conversation billing line is noise to any other backend and
        # would defeat cross-conversation prefix caching.
        if block["text"] and not block["text"].startswith(BILLING_PREFIX):
            texts.append(block["text"])
    return tuple(texts)


def _messages(items: list[Any], dropped: list[str]) -> tuple[Message, ...]:
    messages = []
    for i, item in enumerate(items):
        path = f"messages.{i}"
        if not isinstance(item, dict):
            raise wrong_type(path, "an object", item)
        role = required(item, "role", str, path)
        if role not in ("user", "assistant", "system"):
            raise InvalidRequest(f"{path}.role: must be user, assistant or system.",
                                 param=f"{path}.role")
        parts = _content(item.get("content"), f"{path}.content", dropped,
                         server_blocks=role == "assistant")
        if role == "assistant" and any(isinstance(p, ToolResultPart) for p in parts):
            messages += _split_at_results(parts)
        elif parts:  # empty messages (e.g. `--bare`'s system message) carry nothing
            messages.append(Message(role, parts))
    return tuple(messages)


def _split_at_results(parts: tuple[Part, ...]) -> list[Message]:
    """An assistant turn holding web search or fetch results (run by the proxy or by
    Anthropic) as the turns any backend knows: each call, then its result in a user turn,
    then what the model wrote next."""
    turns: list[Message] = []
    for part in parts:
        role: Literal["user", "assistant"] = \
            "user" if isinstance(part, ToolResultPart) else "assistant"
        if turns and turns[-1].role == role:
            turns[-1] = Message(role, (*turns[-1].parts, part))
        else:
            turns.append(Message(role, (part,)))
    return turns


def _content(value: Any, path: str, dropped: list[str], *,
             server_blocks: bool = False) -> tuple[Part, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),) if value else ()
    if not isinstance(value, list):
        raise wrong_type(path, "a string or an array of content blocks", value)
    parts: list[Part] = []
    for i, block in enumerate(value):
        part = _block(block, f"{path}.{i}", dropped, server_blocks)
        if part is not None:
            parts.append(part)
    return tuple(parts)


def _block(block: Any, path: str, dropped: list[str], server_blocks: bool = False
           ) -> Part | None:
    if not isinstance(block, dict):
        raise wrong_type(path, "a content block object", block)
    kind = required(block, "type", str, path)
    if kind == "text":
        text = required(block, "text", str, path)
        return TextPart(text) if text else None
    if kind == "image":
        image = _image(required(block, "source", dict, path), f"{path}.source")
        if image is None:
            dropped.append(f"{path}:image(file)")
        return image
    if kind == "document":
        return _document(block, path)
    if kind == "tool_use":
        return ToolUsePart(required(block, "id", str, path), required(block, "name", str, path),
                           optional(block, "input", dict, path) or {})
    if kind == "tool_result":
        return _tool_result(block, path, dropped)
    if kind == "thinking":
        return ThinkingPart(optional(block, "thinking", str, path) or "",
                            optional(block, "signature", str, path) or "")
    if kind == "tool_reference":
        # Tool search's "this tool is now loaded" marker: plain text to anyone else.
        return TextPart(f"Tool loaded: {block.get('tool_name', '')}")
    if server_blocks:  # an earlier answer's web search or fetch: the call and its result
        server_part = server_block_part(block)
        if server_part is not None:
            return server_part
    dropped.append(f"{path}:{kind}")  # redacted_thinking, other server tools, future kinds
    return None


def _image(source: dict[str, Any], path: str) -> ImagePart | None:
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(media_type=required(source, "media_type", str, path),
                         data=required(source, "data", str, path))
    if kind == "url":
        return ImagePart(url=required(source, "url", str, path))
    if kind == "file":
        return None  # an Anthropic Files API id means nothing to another upstream
    raise InvalidRequest(f"{path}.type: image sources must be base64 or url.",
                         param=f"{path}.type")


def _document(block: dict[str, Any], path: str) -> DocumentPart:
    source = required(block, "source", dict, path)
    kind, title = source.get("type"), optional(block, "title", str, path)
    if kind == "base64":
        return DocumentPart(media_type=optional(source, "media_type", str, f"{path}.source"),
                            title=title, data=required(source, "data", str, f"{path}.source"))
    if kind == "text":
        return DocumentPart(text=required(source, "data", str, f"{path}.source"), title=title)
    if kind == "url":
        return DocumentPart(url=required(source, "url", str, f"{path}.source"), title=title)
    if kind == "content":
        parts = _content(source.get("content"), f"{path}.source.content", [])
        text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
        return DocumentPart(text=text, title=title)
    raise InvalidRequest(f"{path}.source.type: unsupported document source {kind!r}.",
                         param=f"{path}.source.type")


def _tool_result(block: dict[str, Any], path: str, dropped: list[str]) -> ToolResultPart:
    tool_use_id = required(block, "tool_use_id", str, path)
    inner = _content(block.get("content"), f"{path}.content", dropped)
    kept = tuple(p for p in inner if isinstance(p, TextPart | ImagePart | DocumentPart))
    return ToolResultPart(tool_use_id, kept, bool(block.get("is_error")))


def _tools(items: list[Any], dropped: list[str]) -> tuple[Tool, ...]:
    tools = []
    for i, item in enumerate(items):
        path = f"tools.{i}"
        if not isinstance(item, dict):
            raise wrong_type(path, "a tool object", item)
        kind = item.get("type")
        if kind not in (None, "custom"):
            # Server tools (bash_*, code_execution_*, …) run at Anthropic; handing them to
            # another model as plain functions makes it "call" tools nobody runs. Web search
            # and fetch are kept apart, in Request.server_tools: the proxy can run those.
            if web_tool_kind(item) is None:
                dropped.append(f"{path}:{kind}")
            continue
        name = required(item, "name", str, path)
        if item.get("defer_loading") and name == "DeferredToolPlaceholder":
            dropped.append(f"{path}:{name}")
            continue
        schema = optional(item, "input_schema", dict, path) or {"type": "object"}
        tools.append(Tool(name, optional(item, "description", str, path), schema))
    return tuple(tools)


def _tool_choice(value: dict[str, Any] | None) -> tuple[ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    kind = required(value, "type", str, "tool_choice")
    if kind not in ("auto", "any", "tool", "none"):
        raise InvalidRequest("tool_choice.type: must be auto, any, tool or none.",
                             param="tool_choice.type")
    name = required(value, "name", str, "tool_choice") if kind == "tool" else None
    parallel = False if value.get("disable_parallel_tool_use") else None
    return ToolChoice(kind, name), parallel


def _reasoning_effort(thinking: dict[str, Any] | None, output_config: dict[str, Any]) -> str | None:
    """Anthropic's thinking switch and effort, as one OpenAI-style reasoning effort."""
    kind = (thinking or {}).get("type")
    if kind == "disabled":
        return None
    effort = output_config.get("effort")
    if isinstance(effort, str) and effort in _EFFORTS:
        return _EFFORTS[effort]
    if kind == "enabled":
        budget = optional(thinking or {}, "budget_tokens", int, "thinking") or 0
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    return None


def _response_schema(output_config: dict[str, Any]) -> dict[str, Any] | None:
    fmt = output_config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _strings(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise wrong_type(path, "an array of strings", value)
    return value
