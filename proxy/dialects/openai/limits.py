"""Limits learned from an OpenAI-compatible upstream's 400 answers.

Sans-I/O. Claude Code asks for up to 128000 output tokens and always sends an effort, and
every server words its refusal differently (peers.md lessons 18 and 22; opportunity 6).
Instead of a hand-written table per model, read the refusal, fix the body, retry once
before the client has seen a byte, and remember what holds for the model:

* "valid range of max_tokens is [1, 8192]" (DeepSeek), "supports at most 16384 completion
  tokens" (OpenAI): the model's output cap, remembered;
* "maximum context length is 32768 … 1000 in the messages" (vLLM): room left for this
  prompt only, not remembered;
* "'max_tokens' is not supported … use 'max_completion_tokens'" (o-series): the field
  name, remembered;
* "Unsupported parameter: 'reasoning_effort'", "Unrecognized request argument supplied:
  temperature": that optional field dropped, remembered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

OPTIONAL_FIELDS = ("reasoning_effort", "temperature", "top_p", "stop", "parallel_tool_calls",
                   "user", "response_format", "stream_options", "tool_choice")
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")

_RANGE = re.compile(r"max_(?:completion_)?tokens.{0,60}?\[\s*\d+\s*,\s*(\d+)\s*\]", re.I | re.S)
_AT_MOST = re.compile(r"(?:at most|maximum(?: value)? (?:is|of)|must be (?:<=|less than or "
                      r"equal to))\s*(\d+)\s*(?:completion|output)?\s*tokens?", re.I)
_CONTEXT = re.compile(r"maximum context length is (\d+)", re.I)
_PROMPT = re.compile(r"(\d+) (?:tokens )?in the messages|request has (\d+) input tokens", re.I)
_USE_COMPLETION = re.compile(r"max_tokens'? is not supported.{0,80}max_completion_tokens", re.I)
_UNSUPPORTED = re.compile(r"(?:unsupported (?:parameter|value)|unrecognized request argument "
                          r"supplied|unknown (?:field|parameter))\W+(\w+)"
                          r"|'loc': \('body', '(\w+)'\)", re.I)


@dataclass(slots=True)
class Learned:
    """What holds for one upstream model, learned from its refusals."""

    max_tokens: int | None = None
    token_field: str | None = None
    dropped: set[str] = field(default_factory=set)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        if not (self.max_tokens or self.token_field or self.dropped):
            return body
        body = {k: v for k, v in body.items() if k not in self.dropped}
        current = _token_field(body)
        if current and self.token_field and current != self.token_field:
            body[self.token_field] = body.pop(current)
            current = self.token_field
        if current and self.max_tokens and body[current] > self.max_tokens:
            body[current] = self.max_tokens
        return body


def learn_from_refusal(message: str, body: dict[str, Any],
                       learned: Learned) -> dict[str, Any] | None:
    """A corrected body for one retry, or None when the refusal is not one we can mend.
    What holds for the model from now on is written into ``learned``."""
    current = _token_field(body)
    if current == "max_tokens" and _USE_COMPLETION.search(message):
        learned.token_field = "max_completion_tokens"
        return learned.apply(body)
    cap = _output_cap(message)
    if current and cap and body[current] > cap:
        learned.max_tokens = cap
        return learned.apply(body)
    room = _room_left(message)
    if current and room and body[current] > room:
        return {**learned.apply(body), current: room}
    name = _unsupported_field(message)
    if name and name in body and name in OPTIONAL_FIELDS:
        learned.dropped.add(name)
        return learned.apply(body)
    return None


def _token_field(body: dict[str, Any]) -> str | None:
    return next((f for f in _TOKEN_FIELDS if isinstance(body.get(f), int)), None)


def _output_cap(message: str) -> int | None:
    match = _RANGE.search(message) or _AT_MOST.search(message)
    return _count(match.group(1)) if match else None


def _room_left(message: str) -> int | None:
    context, prompt = _CONTEXT.search(message), _PROMPT.search(message)
    if not (context and prompt):
        return None
    used, limit = _count(prompt.group(1) or prompt.group(2)), _count(context.group(1))
    if used is None or limit is None:
        return None
    room = limit - used
    return room if room > 0 else None


def _count(digits: str) -> int | None:
    """A token count from the message; a number longer than any real one (the upstream's
    text is not ours) is none, and never a number Python refuses to read."""
    return int(digits) if len(digits) <= 12 else None


def _unsupported_field(message: str) -> str | None:
    match = _UNSUPPORTED.search(message)
    return (match.group(1) or match.group(2)) if match else None
