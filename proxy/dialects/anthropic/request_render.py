"""canonical Request -> Anthropic Messages request body (protocols.md 4.2, section 5).

Sans-I/O. The real API rejects unknown fields, empty text blocks, tool ids outside
``[a-zA-Z0-9_-]``, thinking together with a forced tool or a changed temperature, and a
thinking budget that does not fit under max_tokens; the body built here keeps all of
those rules, so an OpenAI client's request never fails for a reason of translation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

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

THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}
MIN_THINKING_BUDGET = 1024
JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else."
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    model: str
    default_max_tokens: int = 16384


def render_request(request: Request, options: RenderOptions) -> dict[str, Any]:
    max_tokens = request.max_tokens or options.default_max_tokens
    body: dict[str, Any] = {"model": options.model, "max_tokens": max_tokens,
                            "messages": _messages(request.messages)}
    system = list(request.system)
    if request.json_object:
        system.append(JSON_OBJECT_INSTRUCTION)
    if system:
        body["system"] = "\n\n".join(system)
    if request.stop_sequences:
        body["stop_sequences"] = list(request.stop_sequences)
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
        choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
        if choice:
            body["tool_choice"] = choice
    thinking = _thinking(request, max_tokens, body.get("tool_choice"))
    if thinking:
        body["thinking"] = thinking
    else:  # the API refuses temperature (other than 1) alongside thinking
        if request.temperature is not None:
            body["temperature"] = min(max(request.temperature, 0.0), 1.0)
        if request.top_p is not None:
            body["top_p"] = request.top_p
    if request.response_schema is not None:
        body["output_config"] = {"format": {"type": "json_schema",
                                            "schema": request.response_schema}}
    if request.user_id:
        body["metadata"] = {"user_id": request.user_id}
    body["stream"] = True
    return body


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        blocks = [b for b in (_block(p) for p in message.parts) if b is not None]
        if not blocks:
            continue
        if message.role == "user" and out and out[-1]["role"] == "user":
            out[-1]["content"].extend(blocks)  # one turn, tool results first
        else:
            out.append({"role": message.role, "content": blocks})
    if out and out[-1]["role"] == "assistant" and out[-1]["content"][-1]["type"] == "text":
        # A final assistant turn is a prefill, which may not end in white space.
        last = out[-1]["content"][-1]
        last["text"] = last["text"].rstrip()
    if out and out[0]["role"] == "assistant":
        # Anthropic wants the conversation to open with a user turn.
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
    return out


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # The API refuses empty and whitespace-only text blocks.
        return {"type": "text", "text": part.text} if part.text.strip() else None
    if isinstance(part, ToolUsePart):
        return {"type": "tool_use", "id": tool_id(part.id), "name": part.name,
                "input": part.input}
    if isinstance(part, ToolResultPart):
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(part.tool_use_id)}
        content = [b for b in (_block(p) for p in part.content) if b is not None]
        if content:
            result["content"] = content
        if part.is_error:
            result["is_error"] = True
        return result
    if isinstance(part, ImagePart):
        if part.url:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type,
                                            "data": part.data}}
    if isinstance(part, DocumentPart):
        return _document(part)
    if isinstance(part, ThinkingPart) and part.signature:
        # Only a signed block can go back; an unsigned one came from another model.
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    return None


def _document(part: DocumentPart) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type or "application/pdf",
                  "data": part.data}
    elif part.url is not None:
        source = {"type": "url", "url": part.url}
    else:
        source = {"type": "text", "media_type": "text/plain", "data": part.text or ""}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.title:
        block["title"] = part.title
    return block


def _tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "input_schema": tool.input_schema}
    if tool.description:
        out["description"] = tool.description
    return out


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    out: dict[str, Any] = {"type": choice.type if choice else "auto"}
    if choice is not None and choice.type == "tool":
        out["name"] = choice.name
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _thinking(request: Request, max_tokens: int,
              tool_choice: dict[str, Any] | None) -> dict[str, Any] | None:
    if not request.reasoning_effort:
        return None
    if tool_choice and tool_choice["type"] in ("any", "tool"):
        return None  # the API refuses thinking with a forced tool: the choice wins
    if _unsigned_tool_turn(request):
        # With thinking on, a tool loop's assistant turn must open with its signed
        # thinking block; OpenAI clients cannot keep signatures, so the turn goes without.
        return None
    budget = min(THINKING_BUDGETS[request.reasoning_effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _unsigned_tool_turn(request: Request) -> bool:
    last = next((m for m in reversed(request.messages) if m.role == "assistant"), None)
    if last is None or not any(isinstance(p, ToolUsePart) for p in last.parts):
        return False
    return not any(isinstance(p, ThinkingPart) and p.signature for p in last.parts)


def tool_id(raw: str) -> str:
    """A tool id the API accepts; the same input always gives the same id, so a call and
    its result stay paired."""
    if raw and not _BAD_ID_CHARS.search(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{_BAD_ID_CHARS.sub('_', raw)}_{digest}"
