"""A conversation's history flattened into the content blocks of one CLI user turn.

Sans-I/O. The CLI runs one turn per stdin user line and cannot be handed earlier assistant
turns (an ``assistant`` stdin line lands before the queued turn, not in order), so every
earlier turn travels inside the new one, as a transcript:

* one text block opens it, saying what follows; each earlier turn is wrapped in a tag
  naming its role (``<user>``, ``<assistant>``, ``<system>``);
* tool calls and their results are text: ``<tool_use id name>`` with the arguments' JSON,
  ``<tool_result tool_use_id>`` (``is_error``) with the result's text;
* images and documents stay content blocks, in place between the transcript's texts;
* earlier thinking is left out, as the Messages API itself drops it from earlier turns;
* the newest user message follows the transcript as it is, its own blocks (a lone user
  message is sent with no transcript at all);
* the last text block never starts with ``/``: the CLI would run it as one of its own
  slash commands (``/cost``, ``/logout`` …) instead of asking the model (measured);
* each earlier turn is a text block of its own, and the last of them carries a cache
  breakpoint (the CLI passes it through to the API, whose prompt cache then serves the
  unchanged history next turn: about 67 % of a 20-turn conversation's input instead of
  7 %, ``scripts/cli_history.py``). A fresh CLI uses three of the API's four
  breakpoints; this is the fourth.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)
from proxy.errors import InvalidRequest

OPENING = ("The conversation so far, oldest turn first; each turn is wrapped in a tag "
           "naming who spoke, and tool calls and their results are shown as text. "
           "The newest user message follows after it: answer that message, as the "
           "assistant, in the same conversation.\n\n")
CONTINUE = ("\n\nContinue the conversation as the assistant from where the transcript "
            "ends.")


def user_content(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The content blocks of the one user turn that carries ``messages``."""
    history = list(messages)
    newest: Message | None = None
    if history and history[-1].role == "user":
        newest = history.pop()
    blocks = _Blocks()
    if history:
        blocks.text(OPENING)
        for message in history:
            _turn(blocks, message)
            blocks.flush()
        blocks.mark()
        if newest is None:
            blocks.text(CONTINUE)
        blocks.flush()
    if newest is not None:
        for part in newest.parts:
            _part(blocks, part)
            blocks.flush()  # the newest message keeps its own blocks, one per part
    content = blocks.done()
    if not content:
        raise InvalidRequest("The request has no content the Claude Code CLI can take.",
                             param="messages")
    return content


class _Blocks:
    """Content blocks with the text between non-text blocks gathered into one."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self._text: list[str] = []

    def text(self, text: str) -> None:
        self._text.append(text)

    def block(self, block: dict[str, Any]) -> None:
        self.flush()
        self.out.append(block)

    def mark(self) -> None:
        """A cache breakpoint on the last block so far."""
        if self.out:
            self.out[-1]["cache_control"] = {"type": "ephemeral"}

    def flush(self) -> None:
        text = "".join(self._text)
        self._text = []
        if text:
            self.out.append({"type": "text", "text": text})

    def done(self) -> list[dict[str, Any]]:
        self.flush()
        last = next((b for b in reversed(self.out) if b["type"] == "text"), None)
        if last is not None and last["text"].startswith("/"):
            last["text"] = "\n" + last["text"]
        return self.out


def _turn(blocks: _Blocks, message: Message) -> None:
    blocks.text(f"<{message.role}>\n")
    for n, part in enumerate(p for p in message.parts if not isinstance(p, ThinkingPart)):
        if n:
            blocks.text("\n")
        _part(blocks, part)
    blocks.text(f"\n</{message.role}>\n\n")


def _part(blocks: _Blocks, part: Part) -> None:
    if isinstance(part, TextPart):
        blocks.text(part.text)
    elif isinstance(part, ImagePart | DocumentPart):
        blocks.block(_media(part))
    elif isinstance(part, ToolUsePart):
        arguments = orjson.dumps(part.input).decode()
        blocks.text(f'<tool_use id="{part.id}" name="{part.name}">\n{arguments}\n</tool_use>')
    elif isinstance(part, ToolResultPart):
        error = ' is_error="true"' if part.is_error else ""
        blocks.text(f'<tool_result tool_use_id="{part.tool_use_id}"{error}>\n')
        for n, inner in enumerate(part.content):
            if n:
                blocks.text("\n")
            _part(blocks, inner)
        blocks.text("\n</tool_result>")
    elif isinstance(part, ThinkingPart):
        return


def _media(part: ImagePart | DocumentPart) -> dict[str, Any]:
    """An image or document as the Messages API's content block."""
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type,
                                            "data": part.data}}
    if part.text is not None:
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain",
                                  "data": part.text}
    elif part.url is not None:
        source = {"type": "url", "url": part.url}
    else:
        source = {"type": "base64", "media_type": part.media_type or "application/pdf",
                  "data": part.data}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.title:
        block["title"] = part.title
    return block
