"""canonical Request -> OpenAI Chat Completions request body (protocols.md 4.1).

Sans-I/O. The upstream is always asked to stream, with usage (non-streaming answers are
made by collecting the stream). Tool names longer than OpenAI's 64 characters (Claude
Code's ``mcp__server__tool`` names) are shortened reversibly; the map goes to the stream
decoder, which restores them (peers.md lesson 10).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

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

MAX_TOOL_NAME = 64
MAX_USER_ID = 64


@dataclass(frozen=True, slots=True)
class RenderOptions:
    model: str
    max_tokens_field: str = "max_tokens"  # or "max_completion_tokens" (o-series)
    max_tokens_cap: int | None = None
    send_reasoning_effort: bool = True
    replay_reasoning: bool = False  # DeepSeek-style: thinking back as reasoning_content
    inline_system_messages: bool = False  # keep later system messages in place


@dataclass(slots=True)
class Rendered:
    body: dict[str, Any]
    tool_names: dict[str, str] = field(default_factory=dict)  # upstream name -> client name


def render_request(request: Request, options: RenderOptions) -> Rendered:
    sent_names = {t.name for t in request.tools}
    body: dict[str, Any] = {"model": options.model, "messages": _messages(request, options)}
    if request.max_tokens is not None:
        cap = options.max_tokens_cap
        body[options.max_tokens_field] = min(request.max_tokens, cap) if cap else request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
        choice = request.tool_choice
        # A choice naming a tool we did not forward (a server tool) would name nothing.
        if choice is not None and (choice.type != "tool" or choice.name in sent_names):
            body["tool_choice"] = _tool_choice(choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.reasoning_effort and options.send_reasoning_effort:
        body["reasoning_effort"] = request.reasoning_effort
    if request.response_schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": request.response_schema, "strict": True}}
    if request.user_id:
        body["user"] = _user(request.user_id)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    restore = {upstream_tool_name(name): name for name in sent_names if len(name) > MAX_TOOL_NAME}
    return Rendered(body, restore)


def _messages(request: Request, options: RenderOptions) -> list[Any]:
    out: list[dict[str, Any]] = []
    system = list(request.system)
    if not options.inline_system_messages:
        # Many chat templates (Qwen, llama.cpp, MiniMax) refuse a system message anywhere
        # but first; Claude Code sends one after the first user turn on every request.
        system += [t for m in request.messages if m.role == "system"
                   if (t := _plain_text(m.parts))]
    if system:
        out.append({"role": "system", "content": "\n\n".join(system)})
    for message in request.messages:
        if message.role == "assistant":
            turn = _assistant(message, options)
            if turn["content"] is not None or "tool_calls" in turn:
                out.append(turn)  # a turn of thinking alone says nothing upstream
        elif message.role == "system":
            text = _plain_text(message.parts)
            if text and options.inline_system_messages:
                out.append({"role": "system", "content": text})
        else:
            out.extend(_user_turn(message.parts))
    return out


def _assistant(message: Message, options: RenderOptions) -> dict[str, Any]:
    texts = [p.text for p in message.parts if isinstance(p, TextPart)]
    calls = [{"id": p.id, "type": "function", "function": {
        "name": upstream_tool_name(p.name), "arguments": orjson.dumps(p.input).decode()}}
        for p in message.parts if isinstance(p, ToolUsePart)]
    out: dict[str, Any] = {"role": "assistant",
                           "content": "\n\n".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    if options.replay_reasoning:
        thinking = "".join(p.text for p in message.parts if isinstance(p, ThinkingPart))
        if thinking:
            out["reasoning_content"] = thinking
    return out


def _user_turn(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages placed first; the rest of the turn follows
    as one user message. Images inside tool results cannot ride in an OpenAI tool message,
    so they follow in that user message, labelled with their call id."""
    tool_messages: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ToolResultPart):
            text = _plain_text(part.content)
            if part.is_error:
                text = f"Error: {text}"
            tool_messages.append({"role": "tool", "tool_call_id": part.tool_use_id,
                                  "content": text})
            attached = [p for p in part.content if isinstance(p, ImagePart)
                        or (isinstance(p, DocumentPart) and p.text is None)]
            if attached:
                if not text:
                    tool_messages[-1]["content"] = "[attached in the next message]"
                label = f"[attachments from tool result {part.tool_use_id}]"
                rest.append({"type": "text", "text": label})
                rest.extend(_image(p) if isinstance(p, ImagePart) else _document(p)
                            for p in attached)
        elif isinstance(part, TextPart):
            rest.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            rest.append(_image(part))
        elif isinstance(part, DocumentPart):
            rest.append(_document(part))
    if not rest:
        return tool_messages
    if all(p["type"] == "text" for p in rest):
        text = "\n\n".join(str(p["text"]) for p in rest)
        user: dict[str, Any] = {"role": "user", "content": text}
    else:
        user = {"role": "user", "content": rest}
    return [*tool_messages, user]


def _plain_text(parts: tuple[Part, ...]) -> str:
    texts: list[str] = []
    for part in parts:
        text = part.text if isinstance(part, TextPart | DocumentPart) else None
        if text:
            texts.append(text)
    return "\n\n".join(texts)


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url else f"data:{part.media_type};base64,{part.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document(part: DocumentPart) -> dict[str, Any]:
    if part.data is not None and (part.media_type or "").startswith("text/"):
        with contextlib.suppress(ValueError):
            part = DocumentPart(text=base64.b64decode(part.data).decode("utf-8"),
                                title=part.title)
    if part.data is not None:
        return {"type": "file", "file": {
            "file_data": f"data:{part.media_type or 'application/pdf'};base64,{part.data}",
            "filename": part.title or "document.pdf"}}
    heading = f"{part.title}\n\n" if part.title else ""
    if part.url is not None:
        return {"type": "text", "text": f"{heading}[document at {part.url}]"}
    return {"type": "text", "text": f"{heading}{part.text or ''}"}


def _tool(tool: Tool) -> dict[str, Any]:
    # "$schema" is noise to a function schema, and some servers reject it.
    schema = {k: v for k, v in tool.input_schema.items() if k != "$schema"}
    function: dict[str, Any] = {"name": upstream_tool_name(tool.name), "parameters": schema}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> Any:
    if choice.type == "tool" and choice.name:
        return {"type": "function", "function": {"name": upstream_tool_name(choice.name)}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(choice.type, "auto")


def upstream_tool_name(name: str) -> str:
    """The name as the upstream sees it: itself, or shortened when over 64 characters
    (also in history, so a call to a tool that is gone still has a name the upstream takes)."""
    return name if len(name) <= MAX_TOOL_NAME else shorten_tool_name(name)


def shorten_tool_name(name: str) -> str:
    """A stable name of at most 64 characters: a readable head and a hash of the whole."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:MAX_TOOL_NAME - 11]}_{digest}"


def _user(user_id: str) -> str:
    # Claude Code's user_id is a whole JSON document; a short stable hash is what an
    # OpenAI `user` field is for.
    if len(user_id) <= MAX_USER_ID:
        return user_id
    return "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:32]
