"""Anthropic Messages stream (SSE events) -> canonical events, incrementally.

Sans-I/O. The canonical events follow Anthropic's, so this is mostly a renaming, with
four duties: blocks the canonical model has no room for (``redacted_thinking``, server
tool calls and results) are skipped and the rest renumbered so indexes stay dense; usage
from ``message_start`` (input, cache) and ``message_delta`` (output) is merged; the
grammar is kept (``message_start`` first, one block open at a time, deltas only for the
open block and of its kind), so what goes on is always a stream a client can take; and an
``error`` event, a frame that is not JSON or of the wrong shape, a break of the grammar,
or a stream that ends before ``message_stop`` raises a protocol error naming it, so a cut
stream is never passed off as a finished one.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from proxy.dialects.frame_shape import TextShape
from proxy.dialects.stream_decoding import (
    Frame,
    StreamDecoder,
    malformed,
    object_field,
    parse_frame,
    text_field,
    token_count,
)
from proxy.errors import UpstreamProtocolError, UpstreamStreamError

_KINDS = {"text": "text", "thinking": "thinking", "tool_use": "tool_use"}
_ERROR_KINDS = {"overloaded_error": (529, "overloaded"), "rate_limit_error": (429, "rate_limit"),
                "api_error": (500, "api_error"), "timeout_error": (504, "timeout"),
                "invalid_request_error": (400, "invalid_request"),
                "authentication_error": (401, "authentication"),
                "permission_error": (403, "permission"),
                "request_too_large": (413, "request_too_large")}


class AnthropicStreamDecoder(StreamDecoder):
    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        super().__init__()
        self._message_id = message_id
        self._model = model
        self._started = False
        self._open = -1  # the upstream index of the open block, kept or skipped
        self._open_kind: str | None = None  # its canonical kind; None for a skipped one
        self._seen: set[int] = set()  # upstream indexes already started
        self._next = 0
        self._silent_tool = False  # the open tool block has had no argument fragment yet
        self._usage = Usage(input_tokens=input_tokens)
        self._stop_reason = "end_turn"
        self._stop_sequence: str | None = None
        self._shape = TextShape()  # the hot path: the open text block's frames

    def _take_frame(self, data: Frame) -> None:
        if type(data) is bytes and self._open_kind == "text":
            text = self._shape.text(data)
            if text is not None:  # the open text block's last frame again, other text
                self._out.append(TextDelta(self._next - 1, text))
                return
        frame = parse_frame(data)
        self._take(frame)
        if type(data) is bytes and self._open_kind == "text" and not self._shape.learned \
                and frame.get("type") == "content_block_delta":
            delta = frame.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":
                self._shape.learn(data, b'"text":', delta.get("text"))

    def feed_message(self, body: dict[str, Any]) -> list[Event]:
        """A whole non-streaming Message, replayed as the events that would have built it."""
        with malformed("message body"):
            self._replay_message(body)
        return self._take_out()

    def _replay_message(self, body: dict[str, Any]) -> None:
        if body.get("type") == "error":
            raise _stream_error(body.get("error"))
        self._take({"type": "message_start", "message": body})
        for index, block in enumerate(body.get("content") or ()):
            self._take({"type": "content_block_start", "index": index, "content_block": block})
            self._replay_block(index, block)
            self._take({"type": "content_block_stop", "index": index})
        self._take({"type": "message_delta", "usage": body.get("usage") or {},
                    "delta": {"stop_reason": body.get("stop_reason"),
                              "stop_sequence": body.get("stop_sequence")}})
        self._take({"type": "message_stop"})

    def finish(self, *, truncated: bool = False) -> list[Event]:
        self._raise_held()
        if not self.done:
            where = " in the middle of a frame" if truncated else ""
            raise UpstreamProtocolError(f"The upstream stream ended before message_stop{where}.")
        return []

    def _take(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_delta" and self._started:  # nearly every frame
            self._delta(_index(data), object_field(data, "delta"))
            return
        if kind == "error":
            raise _stream_error(data.get("error"))
        if kind not in _GRAMMAR:
            return  # ping and event types yet to come: nothing to say (the API's own advice)
        if kind == "message_start":
            if self._started:
                raise UpstreamProtocolError("The upstream sent a second message_start.")
            self._message_start(object_field(data, "message"))
            return
        if not self._started:
            raise UpstreamProtocolError(f"The upstream sent {kind} before message_start.")
        if kind == "content_block_delta":
            self._delta(_index(data), object_field(data, "delta"))
        elif kind == "content_block_start":
            self._start(_index(data), object_field(data, "content_block"))
        elif kind == "content_block_stop":
            self._stop(_index(data))
        else:
            if self._open >= 0:
                raise UpstreamProtocolError(f"The upstream sent {kind} while block "
                                            f"{self._open} was still open.")
            if kind == "message_delta":
                self._message_delta(data)
            else:
                self._message_stop()

    def _start(self, index: int, block: dict[str, Any]) -> None:
        self._shape.forget()
        if self._open >= 0:
            raise UpstreamProtocolError(f"The upstream started block {index} while block "
                                        f"{self._open} was still open.")
        if index in self._seen:
            raise UpstreamProtocolError(f"The upstream started block {index} twice.")
        self._seen.add(index)
        self._open, self._open_kind = index, _KINDS.get(text_field(block, "type"))
        if self._open_kind is None:
            return  # redacted_thinking, server_tool_use, web_search_tool_result, …
        at = self._next
        self._next += 1
        if self._open_kind == "tool_use":
            self._silent_tool = True
            self._out.append(BlockStart(at, "tool_use", text_field(block, "id"),
                                        text_field(block, "name")))
        else:
            self._out.append(BlockStart(at, self._open_kind))  # type: ignore[arg-type]

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        if index != self._open:
            self._check_open(index, "content_block_delta")
        kind = delta.get("type")
        if kind == "text_delta" and self._open_kind == "text":  # the hot path
            self._out.append(TextDelta(self._next - 1, text_field(delta, "text")))
            return
        fits = _DELTA_BLOCKS.get(kind) if type(kind) is str else None
        if fits is None or self._open_kind is None:
            return  # citations_delta (the cited text itself arrives as text), skipped blocks
        if fits != self._open_kind:
            raise UpstreamProtocolError(f"The upstream sent a {kind} in block {index}, "
                                        f"a {self._open_kind} block.")
        at = self._next - 1
        if kind == "text_delta":
            self._out.append(TextDelta(at, text_field(delta, "text")))
        elif kind == "input_json_delta":
            partial = text_field(delta, "partial_json")
            if partial:
                self._silent_tool = False
                self._out.append(ToolArgsDelta(at, partial))
        elif kind == "thinking_delta":
            self._out.append(ThinkingDelta(at, text_field(delta, "thinking")))
        else:
            self._out.append(SignatureDelta(at, text_field(delta, "signature")))

    def _stop(self, index: int) -> None:
        self._shape.forget()
        self._check_open(index, "content_block_stop")
        if self._open_kind is not None:
            at = self._next - 1
            if self._open_kind == "tool_use" and self._silent_tool:
                # A call without arguments streams only "": say "{}", an object.
                self._out.append(ToolArgsDelta(at, "{}"))
            self._out.append(BlockStop(at))
        self._open, self._open_kind = -1, None

    def _check_open(self, index: int, kind: str) -> None:
        if index != self._open:
            raise UpstreamProtocolError(f"The upstream sent a {kind} for block {index}, "
                                        "which is not open.")

    def _replay_block(self, index: int, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            delta = {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "thinking":
            self._delta(index, {"type": "thinking_delta", "thinking": block.get("thinking", "")})
            delta = {"type": "signature_delta", "signature": block.get("signature", "")}
        elif kind == "tool_use":
            delta = {"type": "input_json_delta",
                     "partial_json": orjson.dumps(block.get("input") or {}).decode()}
        else:
            return
        self._delta(index, delta)

    def _message_start(self, message: dict[str, Any]) -> None:
        self._started = True
        self._usage = _merge_usage(self._usage, object_field(message, "usage"))
        self._out.append(MessageStart(self._message_id, self._model, self._usage))

    def _message_delta(self, data: dict[str, Any]) -> None:
        # Held until message_stop: its usage is cumulative, and it must come exactly once.
        self._usage = _merge_usage(self._usage, object_field(data, "usage"))
        delta = object_field(data, "delta")
        self._stop_reason = text_field(delta, "stop_reason") or "end_turn"
        self._stop_sequence = text_field(delta, "stop_sequence") or None

    def _message_stop(self) -> None:
        self.done = True
        self._out.append(MessageDelta(self._stop_reason, self._usage, self._stop_sequence))
        self._out.append(MessageStop())


_GRAMMAR = frozenset({"message_start", "content_block_start", "content_block_delta",
                      "content_block_stop", "message_delta", "message_stop"})
_DELTA_BLOCKS = {"text_delta": "text", "input_json_delta": "tool_use",
                 "thinking_delta": "thinking", "signature_delta": "thinking"}


def _index(data: dict[str, Any]) -> int:
    index = data.get("index")
    if type(index) is not int or index < 0:
        raise UpstreamProtocolError(f"The upstream sent a {data.get('type')} without a block "
                                    "index.")
    return index


def _merge_usage(usage: Usage, update: dict[str, Any]) -> Usage:
    """Anthropic's usage is cumulative; a later frame's fields replace earlier ones."""
    def pick(name: str, current: int) -> int:
        value = token_count(update.get(name))
        return current if value is None else value

    return Usage(input_tokens=pick("input_tokens", usage.input_tokens),
                 output_tokens=pick("output_tokens", usage.output_tokens),
                 cache_read_input_tokens=pick("cache_read_input_tokens",
                                              usage.cache_read_input_tokens),
                 cache_creation_input_tokens=pick("cache_creation_input_tokens",
                                                  usage.cache_creation_input_tokens))


def _stream_error(error: Any) -> UpstreamStreamError:
    error = error if isinstance(error, dict) else {}
    status, kind = _ERROR_KINDS.get(str(error.get("type")), (500, "api_error"))
    message = str(error.get("message") or "The upstream reported an error.")
    return UpstreamStreamError(message, status=status, kind=kind)
