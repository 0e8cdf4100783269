"""canonical events -> Anthropic Messages SSE bytes (protocols.md 1.5).

Sans-I/O. Every frame carries its ``event:`` line (the Python SDK and Claude Code drop
frames without one). The encoder also enforces the grammar it writes: a delta for a block
that is not open, or a block started out of order, is a bug upstream of here and raises
instead of producing a stream that Claude Code answers with "Content block not found"
(peers.md lesson 1).
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.canonical import (
    RESULT_KINDS,
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
from proxy.dialects.anthropic.responses import add_server_tool_use, error_type, result_block
from proxy.sse import encode_event

PING = encode_event(b"ping", b'{"type":"ping"}')
_END = b"}}\n\n"
_dumps = orjson.dumps


class AnthropicStreamEncoder:
    __slots__ = ("_delta_head", "_next", "_open")

    def __init__(self) -> None:
        self._next = 0  # the index the next block must have
        self._open = -1
        self._delta_head = b""  # the frame's bytes up to the delta type, for the open block

    def encode(self, events: list[Event]) -> bytes:
        return b"".join([self._frame(event) for event in events])

    def _frame(self, event: Event) -> bytes:
        # The three deltas are nearly every frame: built from bytes, no dict, no dumps of
        # the envelope (the design card's "SSE frames built from bytes").
        if type(event) is TextDelta:
            self._check_open(event.index)
            return self._delta_head + b'text_delta","text":' + _dumps(event.text) + _END
        if type(event) is ToolArgsDelta:
            self._check_open(event.index)
            return (self._delta_head + b'input_json_delta","partial_json":'
                    + _dumps(event.partial_json) + _END)
        if type(event) is ThinkingDelta:
            self._check_open(event.index)
            return self._delta_head + b'thinking_delta","thinking":' + _dumps(event.text) + _END
        if isinstance(event, SignatureDelta):
            return self._delta(event.index, {"type": "signature_delta",
                                             "signature": event.signature})
        if isinstance(event, BlockStart):
            return self._start(event)
        if isinstance(event, BlockStop):
            self._check_open(event.index)
            self._open = -1
            return encode_event(b"content_block_stop", _dumps(
                {"type": "content_block_stop", "index": event.index}))
        if isinstance(event, MessageStart):
            return encode_event(b"message_start", _dumps({"type": "message_start", "message": {
                "id": event.id, "type": "message", "role": "assistant", "model": event.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": usage_json(event.usage)}}))
        if isinstance(event, MessageDelta):
            if self._open != -1:
                raise AssertionError("message_delta while a block is still open")
            return encode_event(b"message_delta", _dumps({"type": "message_delta", "delta": {
                "stop_reason": event.stop_reason, "stop_sequence": event.stop_sequence},
                "usage": usage_json(event.usage)}))
        if isinstance(event, MessageStop):
            return encode_event(b"message_stop", b'{"type":"message_stop"}')
        raise AssertionError(f"unknown event {event!r}")

    def _start(self, event: BlockStart) -> bytes:
        if self._open != -1 or event.index != self._next:
            raise AssertionError(f"block {event.index} started out of order")
        self._open = event.index
        self._next += 1
        self._delta_head = (b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                            b'"index":%d,"delta":{"type":"' % event.index)
        block: dict[str, Any]
        if event.kind == "tool_use" or event.kind == "server_tool_use":
            block = {"type": event.kind, "id": event.tool_id, "name": event.tool_name,
                     "input": {}}
        elif event.kind in RESULT_KINDS:
            if event.result is None:
                raise AssertionError(f"{event.kind} block {event.index} without its content")
            block = result_block(event.kind, event.tool_id, event.result)
        elif event.kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            block = {"type": "text", "text": ""}
        return encode_event(b"content_block_start", _dumps(
            {"type": "content_block_start", "index": event.index, "content_block": block}))

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        self._check_open(index)
        return encode_event(b"content_block_delta", _dumps(
            {"type": "content_block_delta", "index": index, "delta": delta}))

    def _check_open(self, index: int) -> None:
        if index != self._open:
            raise AssertionError(f"delta or stop for block {index}, which is not open")


def usage_json(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {"input_tokens": usage.input_tokens,
                            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                            "cache_read_input_tokens": usage.cache_read_input_tokens,
                            "output_tokens": usage.output_tokens}
    add_server_tool_use(body, usage)
    return body


def error_frame(kind: str, message: str) -> bytes:
    """The in-stream error event; the stream then ends without ``message_stop``."""
    return encode_event(b"error", _dumps(
        {"type": "error", "error": {"type": error_type(kind), "message": message}}))
