"""The client's tools described in the system prompt, compactly, for a backend without tools.

Sans-I/O, a request rewrite (canonical Request in, canonical Request out). Each tool is one
line: its name, its argument names with the required ones marked ``*``, and the first
sentence of its description cut short. Claude Code's twenty tools come to under 2 KB
this way instead of 80 KB of schemas (measured in the tests). Then the answer format the
sniffer (``proxy.filters.tool_sniffer``) reads back: ``{"tool": NAME, "args": {...}}``,
or ``{"calls": [...]}`` for several calls at once.

``tools_in_prompt`` is the whole rewrite: tools described, earlier calls and results
written as text (``render.flatten_tool_parts``). The sniffer needs the tool names, so a
backend takes them from the request before rewriting it (``tools`` is emptied here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from proxy.canonical import Request, Tool, ToolChoice
from proxy.prompt_tools.render import flatten_tool_parts

DESCRIPTION_CHARS = 40
HEADER = "# Tools\nTools you can use (* marks a required argument):"
ANSWER_FORMAT = (
    'To use a tool, answer with JSON: {"tool": "NAME", "args": {...}}\n'
    'Several at once: {"calls": [{"tool": "NAME", "args": {...}}, ...]}\n'
    "Text may come before the JSON, nothing after it. "
    "Results come back in the next message, in <tool_results>.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SPACE = re.compile(r"\s+")


def tools_in_prompt(request: Request) -> Request:
    """The whole rewrite for a backend without tools."""
    return flatten_tool_parts(describe_tools(request))


def describe_tools(request: Request, *, description_chars: int = DESCRIPTION_CHARS) -> Request:
    """``request`` with its tools described at the end of the system prompt instead."""
    if not request.tools:
        return replace(request, tool_choice=None, parallel_tool_calls=None) \
            if request.tool_choice or request.parallel_tool_calls is not None else request
    section = tool_prompt(request.tools, request.tool_choice, request.parallel_tool_calls,
                          description_chars=description_chars)
    return replace(request, system=(*request.system, section), tools=(), tool_choice=None,
                   parallel_tool_calls=None)


def tool_prompt(tools: Sequence[Tool], choice: ToolChoice | None = None,
                parallel: bool | None = None, *,
                description_chars: int = DESCRIPTION_CHARS) -> str:
    lines = [HEADER, *(tool_line(t, description_chars) for t in tools), ANSWER_FORMAT]
    rule = _choice_rule(choice)
    if rule:
        lines.append(rule)
    if parallel is False:
        lines.append("Use one tool at a time.")
    return "\n".join(lines)


def tool_line(tool: Tool, description_chars: int = DESCRIPTION_CHARS) -> str:
    args = ", ".join(f"{name}*" if required else name
                     for name, required in argument_names(tool.input_schema))
    summary = one_line(tool.description or "", description_chars)
    return f"- {tool.name}({args})" + (f": {summary}" if summary else "")


def argument_names(schema: dict[str, Any]) -> list[tuple[str, bool]]:
    """The top-level argument names of a JSON schema, required ones first-class."""
    properties = schema.get("properties")
    required = schema.get("required")
    needed = set(required) if isinstance(required, list) else set()
    names = list(properties) if isinstance(properties, dict) else []
    return [(name, name in needed) for name in names]


def one_line(description: str, limit: int = DESCRIPTION_CHARS) -> str:
    """The first sentence of the first paragraph, whitespace folded, cut at a word."""
    first = description.strip().split("\n\n", 1)[0]
    first = _SENTENCE_END.split(first, 1)[0]
    text = _SPACE.sub(" ", first).strip()
    if limit <= 1:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(",;:") + "…"


def _choice_rule(choice: ToolChoice | None) -> str:
    if choice is None or choice.type == "auto":
        return ""
    if choice.type == "any":
        return "You must use a tool in this answer."
    if choice.type == "tool":
        return f"You must use the tool {choice.name} in this answer."
    return "Do not use any tool in this answer."
