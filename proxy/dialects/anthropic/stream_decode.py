"""Anthropic Messages stream (SSE events) -> canonical events, incrementally.

Sans-I/O. The canonical events follow Anthropic's, so this is mostly a renaming, with
three duties: blocks the canonical model has no room for (``redacted_thinking``, server
tool calls and results) are skipped and the rest renumbered so indexes stay dense; usage
from ``message_start`` (input, cache) and ``message_delta`` (output) is merged; and an
``error`` event, a frame that is not JSON, or a stream that ends before ``message_stop``
raises, so a cut stream is never passed off as a finished one.
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
from proxy.dialects.stream_decoding import StreamDecoder, parse_frame
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
        self._input_estimate = input_tokens
        self._blocks: dict[int, int] = {}  # upstream index -> canonical index (kept ones)
        self._next = 0
        self._silent_tools: set[int] = set()  # tool blocks with no argument fragment yet
        self._usage = Usage(input_tokens=input_tokens)

    def _take_frame(self, data: str) -> None:
        self._take(parse_frame(data))

    def feed_message(self, body: dict[str, Any]) -> list[Event]:
        """A whole non-streaming Message, replayed as the events that would have built it."""
        self._take({"type": "message_start", "message": body})
        for index, block in enumerate(body.get("content") or ()):
            self._take({"type": "content_block_start", "index": index, "content_block": block})
            self._replay_block(index, block)
            self._take({"type": "content_block_stop", "index": index})
        self._take({"type": "message_delta", "usage": body.get("usage") or {},
                    "delta": {"stop_reason": body.get("stop_reason"),
                              "stop_sequence": body.get("stop_sequence")}})
        self._take({"type": "message_stop"})
        return self._take_out()

    def finish(self, *, truncated: bool = False) -> list[Event]:
        self._raise_held()
        if not self.done:
            where = " in the middle of a frame" if truncated else ""
            raise UpstreamProtocolError(f"The upstream stream ended before message_stop{where}.")
        return []

    def _take(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_delta":
            self._delta(data)
        elif kind == "content_block_start":
            self._start(data)
        elif kind == "content_block_stop":
            index = self._blocks.get(data.get("index", -1))
            if index is not None:
                if index in self._silent_tools:
                    # A call without arguments streams only "": say "{}", an object.
                    self._out.append(ToolArgsDelta(index, "{}"))
                self._out.append(BlockStop(index))
        elif kind == "message_start":
            self._message_start(data.get("message") or {})
        elif kind == "message_delta":
            self._message_delta(data)
        elif kind == "message_stop":
            self.done = True
            self._out.append(MessageStop())
        elif kind == "error":
            raise _stream_error(data.get("error"))
        # ping and event types yet to come: nothing to say (the API's own advice)

    def _start(self, data: dict[str, Any]) -> None:
        block = data.get("content_block") or {}
        kind = _KINDS.get(block.get("type", ""))
        if kind is None:
            return  # redacted_thinking, server_tool_use, web_search_tool_result, …
        index = self._blocks[data.get("index", -1)] = self._next
        self._next += 1
        if kind == "tool_use":
            self._silent_tools.add(index)
            self._out.append(BlockStart(index, "tool_use", block.get("id", ""),
                                        block.get("name", "")))
        else:
            self._out.append(BlockStart(index, kind))  # type: ignore[arg-type]

    def _delta(self, data: dict[str, Any]) -> None:
        index = self._blocks.get(data.get("index", -1))
        if index is None:
            return
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            self._out.append(TextDelta(index, delta.get("text", "")))
        elif kind == "input_json_delta":
            if delta.get("partial_json"):
                self._silent_tools.discard(index)
                self._out.append(ToolArgsDelta(index, delta["partial_json"]))
        elif kind == "thinking_delta":
            self._out.append(ThinkingDelta(index, delta.get("thinking", "")))
        elif kind == "signature_delta":
            self._out.append(SignatureDelta(index, delta.get("signature", "")))
        # citations_delta: the cited text itself arrives as text

    def _replay_block(self, index: int, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            delta = {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "thinking":
            self._delta({"index": index, "delta": {"type": "thinking_delta",
                                                   "thinking": block.get("thinking", "")}})
            delta = {"type": "signature_delta", "signature": block.get("signature", "")}
        elif kind == "tool_use":
            delta = {"type": "input_json_delta",
                     "partial_json": orjson.dumps(block.get("input") or {}).decode()}
        else:
            return
        self._delta({"index": index, "delta": delta})

    def _message_start(self, message: dict[str, Any]) -> None:
        self._usage = _merge_usage(self._usage, message.get("usage") or {})
        self._out.append(MessageStart(self._message_id, self._model, self._usage))

    def _message_delta(self, data: dict[str, Any]) -> None:
        self._usage = _merge_usage(self._usage, data.get("usage") or {})
        delta = data.get("delta") or {}
        self._out.append(MessageDelta(delta.get("stop_reason") or "end_turn", self._usage,
                                      delta.get("stop_sequence")))


def _merge_usage(usage: Usage, update: dict[str, Any]) -> Usage:
    """Anthropic's usage is cumulative; a later frame's fields replace earlier ones."""
    def pick(name: str, current: int) -> int:
        value = update.get(name)
        return value if isinstance(value, int) else current

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
