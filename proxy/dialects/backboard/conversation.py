"""Conversation keys: which backboard thread already holds a client's history, and what to
send it.

Sans-I/O. A chat client resends the whole conversation each turn; a backboard thread keeps
it server-side. A turn's history (every message up to the last assistant turn, assistant
turns included) is hashed into a key; the thread that produced that history is stored
under it. The key is a chain over the conversation's runs (consecutive messages of one
role), seeded with the system prompt, so after a reply the key of "history + new turn +
reply" is exactly the key the client's next request will look up.

What the key sees is made stable: ``<system-reminder>`` spans and Claude Code's billing
line are cut, whitespace does not count, thinking is left out (clients drop it or clear
it), ``role: system`` messages inside the conversation are left out (Claude Code's
environment message moves and carries the date). Tool call ids are kept: they are unique.

The rules a backend keeps (the store is the backend's):

* a first turn has no history (``lookup_key`` is None): it always gets a fresh thread, so
  two new conversations never share one;
* a lookup is one-shot: the backend removes the mapping it used. A retried or branched
  turn (the thread has moved on, or holds a failed half-turn) then misses and starts
  fresh, and two conversations with the same history cannot land on one thread;
* a reused thread is sent ``new_turn`` (what it has not seen: the user's text, every tool
  result as one block); a fresh thread is sent ``replay`` (system prompt, the history,
  the new turn), so context is never silently lost;
* after a complete reply, the thread is stored under ``store_key(reply parts)``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from proxy.canonical import (
    CollectedMessage,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    ToolResultPart,
    ToolUsePart,
)
from proxy.errors import InvalidRequest
from proxy.prompt_tools.render import content_text, message_parts_as_text, tool_names

KEY_SEED = b"backboard-conversation-1\n"
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
_BILLING = re.compile(r"^x-anthropic-billing-header:[^\n]*(\n|$)", re.M)
REPLAY_INTRO = ("The conversation so far, for context (this thread starts here; "
                "answer the message that follows it):")


@dataclass(frozen=True, slots=True)
class Turn:
    """One request's turn, ready for a thread."""

    lookup_key: str | None  # the history before the new turn; None: a first turn
    new_turn: str  # for a thread that holds the history
    replay: str  # for a fresh thread: system prompt, history, new turn
    result_ids: tuple[str, ...]  # the calls the new turn's tool results answer
    chain: bytes = field(repr=False)  # the key state after the new turn
    prefill: tuple[Part, ...] = field(default=(), repr=False)

    def store_key(self, reply: Sequence[Part]) -> str:
        """The key of the history including this turn and the assistant's ``reply``."""
        return _key(_extend(self.chain, [("assistant", (*self.prefill, *reply))]))


def plan_turn(request: Request) -> Turn:
    """Split ``request`` into its history and its new turn, and key and render both."""
    history, new, prefill = _split(request.messages)
    names = tool_names(request.messages)
    new_turn = _render_new(new, prefill, names)
    if not new_turn:
        raise InvalidRequest("The conversation has no new message to send.",
                             param="messages")
    seed = hashlib.sha256(KEY_SEED + stable_text("\n".join(request.system)).encode()).digest()
    before = _extend(seed, _runs(history))
    replay = _render_replay(system_text(request.system), history, new_turn, names)
    return Turn(lookup_key=_key(before) if history else None, new_turn=new_turn,
                replay=replay,
                result_ids=tuple(p.tool_use_id for m in new for p in m.parts
                                 if isinstance(p, ToolResultPart)),
                chain=_extend(before, _runs(new)), prefill=_prefill_parts(prefill))


def reply_parts(message: CollectedMessage) -> tuple[Part, ...]:
    """A collected reply's blocks as the parts a client will send back (no thinking)."""
    parts: list[Part] = []
    for block in message.blocks:
        if block.kind == "text" and block.text:
            parts.append(TextPart(block.text))
        elif block.kind == "tool_use":
            parts.append(ToolUsePart(block.tool_id, block.tool_name, block.tool_input))
    return tuple(parts)


def system_text(system: Sequence[str]) -> str:
    """The system prompt to send: Claude Code's billing line cut, the rest as it is."""
    return "\n\n".join(t for t in (_BILLING.sub("", s).strip() for s in system) if t)


def stable_text(text: str) -> str:
    """What of ``text`` the key sees: no reminders, no billing line, no whitespace."""
    return "".join(_BILLING.sub("", _REMINDER.sub("", text)).split())

# ------------------------------------------------------------------------------ splitting


def _split(messages: Sequence[Message]) -> tuple[Sequence[Message], Sequence[Message],
                                                 Sequence[Message]]:
    """(history up to the last assistant turn, the new turn, a trailing prefill)."""
    end = len(messages)
    while end and messages[end - 1].role == "assistant":
        end -= 1
    last = max((i for i in range(end) if messages[i].role == "assistant"), default=-1)
    return messages[: last + 1], messages[last + 1: end], messages[end:]


def _prefill_parts(prefill: Sequence[Message]) -> tuple[Part, ...]:
    return tuple(part for message in prefill for part in message.parts)


# ---------------------------------------------------------------------------------- keys

Run = tuple[str, Sequence[Part]]


def _runs(messages: Sequence[Message]) -> list[Run]:
    """Consecutive messages of one role as one run; system messages left out."""
    runs: list[tuple[str, list[Part]]] = []
    for message in messages:
        if message.role == "system":
            continue
        if runs and runs[-1][0] == message.role:
            runs[-1][1].extend(message.parts)
        else:
            runs.append((message.role, list(message.parts)))
    return list(runs)


def _extend(state: bytes, runs: Sequence[Run]) -> bytes:
    for role, parts in runs:
        item = _run_bytes(role, parts)
        if item is not None:
            state = hashlib.sha256(state + item).digest()
    return state


def _run_bytes(role: str, parts: Sequence[Part]) -> bytes | None:
    """One run as bytes, the same however a client splits it into messages and parts:
    its text joined, then its calls, its results and markers for its media."""
    text: list[str] = []
    calls: list[list[object]] = []
    results: list[list[object]] = []
    media: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            text.append(part.text)
        elif isinstance(part, ToolUsePart):
            calls.append([part.id, part.name, part.input])
        elif isinstance(part, ToolResultPart):
            results.append([part.tool_use_id, part.is_error,
                            stable_text(content_text(part.content))])
        elif isinstance(part, ImagePart | DocumentPart):
            media.append(_media_mark(part))
    joined = stable_text("".join(text))
    if not (joined or calls or results or media):
        return None
    return orjson.dumps([role, joined, calls, results, media], option=orjson.OPT_SORT_KEYS)


def _media_mark(part: ImagePart | DocumentPart) -> str:
    source = part.data or part.url or (part.text if isinstance(part, DocumentPart) else "")
    return hashlib.sha256((source or "").encode()).hexdigest()[:16]


def _key(state: bytes) -> str:
    return state.hex()[:32]


# ------------------------------------------------------------------------------ rendering


def _render_new(new: Sequence[Message], prefill: Sequence[Message],
                names: dict[str, str]) -> str:
    blocks = []
    for message in new:
        text = parts_text(message.parts, names)
        if text:
            blocks.append(f"<system>\n{text}\n</system>" if message.role == "system" else text)
    started = "".join(p.text for p in _prefill_parts(prefill) if isinstance(p, TextPart))
    if started.strip():
        blocks.append("(Your answer continues this text, which you already wrote; do not "
                      f"repeat it: {started})")
    return "\n\n".join(blocks)


def _render_replay(system: str, history: Sequence[Message], new_turn: str,
                   names: dict[str, str]) -> str:
    sections = [f"<system>\n{system}\n</system>"] if system else []
    if history:
        lines = [REPLAY_INTRO, "<conversation_so_far>"]
        for message in history:
            text = parts_text(message.parts, names)
            if text:
                lines.append(f"<{message.role}>\n{text}\n</{message.role}>")
        lines.append("</conversation_so_far>")
        sections.append("\n".join(lines))
    sections.append(new_turn)
    return "\n\n".join(sections)


def parts_text(parts: Sequence[Part], names: dict[str, str]) -> str:
    """A message's parts as the text a thread is sent: calls as the answer format's JSON,
    results as one block, media as markers, thinking left out."""
    pieces = []
    for part in message_parts_as_text(parts, names):
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ImagePart | DocumentPart):
            pieces.append(content_text((part,)))
    return "\n\n".join(p for p in pieces if p.strip())
