"""Tool calls and tool results as text, in the one format the model is asked to answer in.

Sans-I/O. A backend without tools must still see a consistent history: each earlier call
appears as the JSON the model itself would write (``{"tool": NAME, "args": {...}}``, or
``{"calls": [...]}`` for several at once), and every result of a turn, all of them when
several calls ran in parallel, as one ``<tool_results>`` block that says which failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import orjson

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    ToolResultPart,
    ToolUsePart,
)


def calls_text(calls: Sequence[ToolUsePart]) -> str:
    """One call as ``{"tool", "args"}``, several as ``{"calls": [...]}``."""
    items = [{"tool": call.name, "args": call.input} for call in calls]
    return orjson.dumps(items[0] if len(items) == 1 else {"calls": items}).decode()


def results_text(results: Sequence[ToolResultPart], names: Mapping[str, str]) -> str:
    """Every result as one block; ``names`` maps a call's id to its tool's name."""
    lines = ["<tool_results>"]
    for result in results:
        name = names.get(result.tool_use_id, "unknown")
        error = ' error="true"' if result.is_error else ""
        lines += [f'<result tool="{name}"{error}>', content_text(result.content), "</result>"]
    lines.append("</tool_results>")
    return "\n".join(lines)


def content_text(parts: Sequence[TextPart | ImagePart | DocumentPart]) -> str:
    """A tool result's content as text; what is not text leaves a marker."""
    pieces = []
    for part in parts:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ImagePart):
            pieces.append("[image]")
        elif part.text is not None:
            pieces.append(part.text)
        else:
            pieces.append(f"[document{' ' + part.title if part.title else ''}]")
    return "\n".join(pieces) if pieces else "(no output)"


def tool_names(messages: Sequence[Message]) -> dict[str, str]:
    """Each call id in ``messages`` -> the name of the tool it called."""
    return {part.id: part.name for message in messages for part in message.parts
            if isinstance(part, ToolUsePart)}


def message_parts_as_text(parts: Sequence[Part], names: Mapping[str, str]) -> list[Part]:
    """``parts`` with each run of calls and each run of results made one text part."""
    out: list[Part] = []
    calls: list[ToolUsePart] = []
    results: list[ToolResultPart] = []

    def flush() -> None:
        if calls:
            out.append(TextPart(calls_text(calls)))
            calls.clear()
        if results:
            out.append(TextPart(results_text(results, names)))
            results.clear()

    for part in parts:
        if isinstance(part, ToolUsePart):
            if results:
                flush()
            calls.append(part)
        elif isinstance(part, ToolResultPart):
            if calls:
                flush()
            results.append(part)
        else:
            flush()
            out.append(part)
    flush()
    return out


def flatten_tool_parts(request: Request) -> Request:
    """``request`` with every tool call and tool result written as text."""
    if not any(isinstance(p, ToolUsePart | ToolResultPart)
               for m in request.messages for p in m.parts):
        return request
    names = tool_names(request.messages)
    messages = tuple(Message(m.role, tuple(message_parts_as_text(m.parts, names)))
                     if any(isinstance(p, ToolUsePart | ToolResultPart) for p in m.parts)
                     else m for m in request.messages)
    return replace(request, messages=messages)
