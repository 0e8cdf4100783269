"""The fake backboard's model and wire: what it answers, and how its frames look on the wire.

Used by ``tests/fakes/backboard_upstream.py`` (the server). The model answers from the
WHOLE thread, so a test can prove that context survived: it reads directives from the new
message, each a line of its own (the last of each kind wins, wherever it stands):

    recall: first          Your first message was: "<the thread's first user message>"
    recall: what was my first message?      (the same)
    recall: previous       Your previous message was: "<the user message before this one>"
    recall: count          This thread holds N user messages.
    recall: transcript     every message of the thread, "role: content", one per line
    say: TEXT              answers TEXT exactly (a tool call's JSON, say)
    fail: KIND [after N]   a fault: error | run_failed | status | no_run_ended | cut | empty
    chunk: N               content_streaming pieces of N characters
    delay: SECONDS         a pause between pieces

Anything else gets ``You said: <the message's last non-empty line>``. A test can also
queue exact ``Reply``s (text, pieces, reasoning, delays, faults) or ``HTTPFault``s.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Fault = Literal["error", "run_failed", "status", "no_run_ended", "cut"]
FAULTS = ("error", "run_failed", "status", "no_run_ended", "cut", "empty")
_DIRECTIVE = re.compile(r"^[ \t]*(recall|say|fail|chunk|delay):[ \t]?(.*)$", re.M)


@dataclass
class Reply:
    """One answer of the fake's model."""

    text: str = ""
    pieces: list[str] | None = None  # the exact content_streaming deltas (else text cut up)
    chunk_size: int | None = None  # characters a piece (None: the server's ``wire``)
    delay: float | None = None  # seconds between pieces (None: the server's ``wire``)
    end_delay: float = 0.0  # seconds before run_ended (backboard's late run_ended)
    reasoning: list[str] = field(default_factory=list)  # reasoning_streaming deltas first
    fault: Fault | None = None
    fault_after: int | None = None  # content pieces sent before the fault (None: all)
    fault_message: str = "The model provider returned an error."
    status: str = "failed"  # run_ended's status for the "status" fault
    usage: bool = True  # run_ended carries token counts
    # After ``hold_after`` pieces the stream waits until the test sets ``release``;
    # ``holding`` is set when it starts waiting (proof without timing: the client has
    # what came before while the rest is not even sent).
    hold_after: int | None = None
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def content_pieces(self, default_chunk: int) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        size = max(self.chunk_size or default_chunk, 1)
        return [self.text[i:i + size] for i in range(0, len(self.text), size)]

    def full_text(self) -> str:
        return "".join(self.pieces) if self.pieces is not None else self.text


@dataclass
class HTTPFault:
    """An HTTP error answer: ``detail`` a string or a FastAPI-style list, or ``raw`` bytes."""

    status: int
    detail: Any = None  # None: a usual wording for the status
    headers: dict[str, str] = field(default_factory=dict)
    route: str = "messages"  # a route name or group (see the server), or "*"
    times: int = 1
    raw: bytes | None = None  # a body that is not JSON (an HTML 502 page)

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        detail = self.detail if self.detail is not None else _WORDING.get(self.status, "Error")
        return json.dumps({"detail": detail}).encode()


_WORDING = {400: "Bad request", 401: "Invalid API key", 403: "Not authenticated",
            404: "Not found", 409: "Conflict", 422: "Unprocessable entity",
            429: "Rate limit exceeded", 500: "Internal server error", 502: "Bad gateway",
            503: "Service unavailable"}


@dataclass
class Thread:
    thread_id: str
    assistant_id: str
    account: str
    created_at: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False

    def user_messages(self) -> list[str]:
        return [m["content"] or "" for m in self.messages if m["role"] == "user"]


Responder = Callable[[Thread, str, str, str], Reply]


def default_responder(thread: Thread, content: str, provider: str, model: str) -> Reply:
    """Answers ``content`` (already the thread's last user message) by its directives."""
    found: dict[str, str] = {}
    for kind, value in _DIRECTIVE.findall(content):
        found[kind] = value.strip()
    reply = Reply(text=_text(thread, content, found))
    if "chunk" in found and found["chunk"].isdigit():
        reply.chunk_size = int(found["chunk"])
    if "delay" in found:
        reply.delay = float(found["delay"])
    if "fail" in found:
        _fault(reply, found["fail"])
    return reply


def _text(thread: Thread, content: str, found: dict[str, str]) -> str:
    if "say" in found:
        return found["say"]
    recall = found.get("recall", "").lower()
    users = thread.user_messages()
    if recall.startswith(("first", "what was my first message")):
        return f'Your first message was: "{users[0]}"'
    if recall.startswith("previous"):
        before = users[-2] if len(users) > 1 else ""
        return f'Your previous message was: "{before}"'
    if recall.startswith("count"):
        return f"This thread holds {len(users)} user messages."
    if recall.startswith("transcript"):
        return "\n".join(f"{m['role']}: {m['content']}" for m in thread.messages)
    lines = [line for line in content.splitlines() if line.strip()]
    return f"You said: {lines[-1].strip() if lines else ''}"


def _fault(reply: Reply, spec: str) -> None:
    kind, _, after = spec.partition(" after ")
    kind = kind.strip()
    if kind == "empty":
        reply.text, reply.pieces = "", []
    elif kind in FAULTS:
        reply.fault = kind  # type: ignore[assignment]
        reply.fault_message = f"Scripted failure: {kind}"
    if after.strip().isdigit():
        reply.fault_after = int(after.strip())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored(role: str, content: str | None, **tokens: int) -> dict[str, Any]:
    """A thread message as ``GET /threads/{id}`` shows it."""
    return {"message_id": str(uuid.uuid4()), "role": role, "content": content,
            "status": "COMPLETED", "created_at": now(), "attachments": [], "metadata_": None,
            "input_tokens": tokens.get("input_tokens"),
            "output_tokens": tokens.get("output_tokens")}


def words(text: str | None) -> int:
    """The fake's token count: whitespace-separated words."""
    return len((text or "").split())


@dataclass
class Wire:
    """How the fake writes its stream and replies (backboard.md 4.4 switches)."""

    run_started: bool = True  # a run_started frame first
    event_lines: bool = False  # "event: <type>" before each data line
    done_marker: bool = False  # "data: [DONE]" after run_ended
    space: bool = True  # "data: {...}" (False: "data:{...}")
    status_case: Literal["lower", "upper"] = "lower"  # run_ended "completed" / "COMPLETED"
    reply_shape: Literal["flat", "messages"] = "flat"  # the non-streaming answer's shape
    chunk_size: int = 8
    delay: float = 0.0

    def frame(self, obj: dict[str, Any]) -> bytes:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        head = f"event: {obj['type']}\n" if self.event_lines else ""
        return f"{head}data:{' ' if self.space else ''}{data}\n\n".encode()

    def done(self) -> bytes:
        return b"data: [DONE]\n\n" if self.space else b"data:[DONE]\n\n"

    def completed(self) -> str:
        return "COMPLETED" if self.status_case == "upper" else "completed"
