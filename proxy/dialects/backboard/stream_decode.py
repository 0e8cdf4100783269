"""backboard's message stream (the data of its SSE frames) and its non-streaming reply ->
canonical events, incrementally.

Sans-I/O. Each frame is one JSON object with a ``type`` (backboard.md 1.7):
``content_streaming`` carries a text delta, ``reasoning_streaming`` a thinking delta,
``run_ended`` closes the run with its status and token counts. backboard sends no message
start of its own, so one is made up at the first content. Usage comes from ``run_ended``,
or else from the local estimate (``proxy.tokens``).

Every failure is raised with backboard's own words, never turned into an empty reply as
bbd2api did: an ``error`` or ``run_failed`` frame, a ``run_ended`` whose status is not
``completed``, a run that completed without saying anything, a native tool request (the
proxy gives its assistant no tools), and a stream that ends before ``run_ended``.
Frames with other types (``run_started``, ``memory_retrieved``, ``[DONE]``…) say nothing
to a client; ``run_started``'s ``run_id`` is kept for the logs.
"""

from __future__ import annotations

from typing import Any

from proxy.canonical import (
    BlockKind,
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ThinkingDelta,
    Usage,
)
from proxy.dialects.backboard.errors import stream_error
from proxy.dialects.stream_decoding import DONE, Frame, StreamDecoder, parse_frame
from proxy.errors import UpstreamProtocolError, UpstreamStreamError

_DONE = "completed"


class BackboardStreamDecoder(StreamDecoder):
    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        super().__init__()
        self._message_id = message_id
        self._model = model
        self._input_estimate = input_tokens
        self._started = False
        self._open: BlockKind | None = None
        self._index = -1
        self._chars = 0  # output so far, for the estimate when backboard reports no usage
        self._extra_bytes = 0
        self._said_anything = False
        self.run_id: str | None = None

    def _take_frame(self, data: Frame) -> None:
        if data in DONE:
            return  # not backboard's end (run_ended is); finish() judges a stream without it
        self._take(parse_frame(data))

    def feed_reply(self, body: dict[str, Any]) -> list[Event]:
        """A whole non-streaming reply (the flat ``MessageResponse`` or the newer
        ``{"messages": [...]}`` shape, backboard.md 1.6), as the events of its stream."""
        reply = _reply_of(body)
        status = str(reply.get("status") or _DONE)
        if status.upper() == "REQUIRES_ACTION":
            self._take({"type": "tool_submit_required"})
        try:
            self._delta("text", reply.get("content"))
        except TypeError:
            raise UpstreamProtocolError("backboard's reply has content that is not text.") \
                from None
        # The flat reply's "message" is a receipt ("Message added…"), never a cause.
        end = {name: reply.get(name) for name in ("input_tokens", "output_tokens", "error",
                                                  "detail")}
        self._take(dict(end, type="run_ended", status=status))
        return self._take_out()

    def finish(self, *, truncated: bool = False) -> list[Event]:
        self._raise_held()
        if not self.done:
            where = " in the middle of a frame" if truncated else ""
            raise UpstreamProtocolError(f"backboard's stream ended before run_ended{where}: "
                                        "the reply is incomplete.")
        return []

    # ------------------------------------------------------------------ frames

    def _take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "content_streaming":
            self._delta("text", frame.get("content"))
        elif kind == "reasoning_streaming":
            self._delta("thinking", frame.get("content"))
        elif kind == "run_ended":
            self._run_ended(frame)
        elif kind == "reasoning_ended":
            if self._open == "thinking":
                self._close()
        elif kind == "error":
            raise stream_error(frame, "backboard reported an error")
        elif kind == "run_failed":
            raise stream_error(frame, "backboard's run failed")
        elif kind == "tool_submit_required":
            raise UpstreamProtocolError("backboard asked for native tool outputs, but the "
                                        "proxy gives its assistant no tools.")
        elif kind == "run_started":
            run_id = frame.get("run_id")
            self.run_id = run_id if isinstance(run_id, str) else self.run_id
        elif not isinstance(kind, str):
            raise UpstreamProtocolError(f"backboard sent a stream frame without a type: "
                                        f"{str(frame)[:200]!r}")
        # memory_retrieved, message_saved, bbd2api's tool_call_*, kinds yet to come:
        # nothing for the client

    def _delta(self, kind: BlockKind, piece: Any) -> None:
        if piece is None or piece == "":
            return
        if not isinstance(piece, str):
            raise TypeError("content")
        if not self._started:
            self._start()
        if self._open != kind:
            self._close()
            self._index += 1
            self._open = kind
            self._out.append(BlockStart(self._index, kind))
        self._out.append(TextDelta(self._index, piece) if kind == "text"
                         else ThinkingDelta(self._index, piece))
        self._chars += len(piece)
        if not piece.isascii():
            self._extra_bytes += len(piece.encode("utf-8")) - len(piece)
        self._said_anything = self._said_anything or kind == "text"

    def _start(self) -> None:
        self._started = True
        self._out.append(MessageStart(self._message_id, self._model,
                                      Usage(input_tokens=self._input_estimate)))

    def _close(self) -> None:
        if self._open is not None:
            self._out.append(BlockStop(self._index))
            self._open = None

    def _run_ended(self, frame: dict[str, Any]) -> None:
        status = frame.get("status")
        if not isinstance(status, str) or status.lower() != _DONE:
            raise stream_error(frame if _has_cause(frame) else {},
                               f"backboard's run ended with status {status!r}")
        if not self._said_anything:
            raise UpstreamStreamError("backboard's run completed without any reply text.")
        self._close()
        usage = Usage(input_tokens=_count(frame, "input_tokens", self._input_estimate),
                      output_tokens=_count(frame, "output_tokens", self._output_estimate()))
        self._out += [MessageDelta("end_turn", usage), MessageStop()]
        self.done = True

    def _output_estimate(self) -> int:
        """``tokens.estimate_text`` of the whole reply, from the counts kept on the way."""
        return (self._chars + 3) // 4 + self._extra_bytes // 2


def _count(frame: dict[str, Any], name: str, estimate: int) -> int:
    value = frame.get(name)
    return value if type(value) is int and value >= 0 else estimate


def _has_cause(frame: dict[str, Any]) -> bool:
    return any(frame.get(name) for name in ("error", "message", "detail"))


def _reply_of(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message of either reply shape: flat, or the last of ``messages``."""
    messages = body.get("messages")
    if "content" not in body and isinstance(messages, list):
        replies = [m for m in messages if isinstance(m, dict)]
        if not replies:
            raise UpstreamProtocolError("backboard's reply holds no message.")
        reply = replies[-1]
        usage = body.get("context_usage")
        if "input_tokens" not in reply and isinstance(usage, dict):
            reply = dict(reply, input_tokens=usage.get("used_tokens"))
        return reply
    return body
