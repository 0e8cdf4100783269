"""OpenAI Chat Completions stream (SSE events) -> canonical events, incrementally.

Sans-I/O. Feed it the SSE events of an upstream stream as they arrive; it returns the
canonical events they complete. The rules it keeps (protocols.md 4.5, peers.md section 3):

* every field of a delta is handled, in the order reasoning -> text -> tool calls, before
  its ``finish_reason``;
* each upstream tool-call ``index`` gets its own block, and arguments stream live as they
  arrive. Blocks may not interleave, so when the upstream interleaves fragments of
  parallel calls, the later call is held back until the open one is provably finished:
  its arguments so far parse as a complete JSON object (one more fragment could only make
  them invalid; ``json_progress`` knows it without parsing them again), or the stream
  ended;
* MessageStart goes out before anything else, once there is something: the first block,
  or the end. The end comes after the usage chunk (or ``[DONE]``): one MessageDelta with
  the mapped stop reason and the real usage, then MessageStop. A stream that ends without
  either is cut, and one that ends without any content (a bare ``[DONE]``, a finish with
  nothing before it) answered nothing: both are errors, never a quiet success. Only a
  finish that explains the emptiness (``length``, ``content_filter``) is an answer;
* a frame that is not JSON, or not of the promised shape, or an ``{"error": …}`` frame,
  raises.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from proxy.dialects.frame_shape import TextShape
from proxy.dialects.json_progress import ObjectProgress
from proxy.dialects.stream_decoding import (
    DONE,
    Frame,
    StreamDecoder,
    list_field,
    malformed,
    object_field,
    parse_frame,
    text_field,
    token_count,
)
from proxy.errors import UpstreamProtocolError, UpstreamStreamError
from proxy.tokens import estimate_text

# A finish that explains an answer with no content: the limit was spent (on hidden
# reasoning, say), or a filter stopped it. Any other end without content is a failure.
_EMPTY_ANSWERS = ("length", "content_filter")
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


@dataclass(slots=True)
class _Call:
    id: str
    name: str
    upstream_id: str = ""
    block: int = -1  # the canonical block index, once opened
    args: ObjectProgress = field(default_factory=ObjectProgress)
    has_args: bool = False  # a fragment other than white space came
    closed: bool = False


@dataclass(slots=True)
class _Item:
    """One piece of content waiting for (or being routed to) a block."""

    kind: str  # "thinking" | "text" | "tool"
    text: str
    call: int = -1  # the upstream tool-call index, for kind "tool"


class OpenAIStreamDecoder(StreamDecoder):
    def __init__(self, *, message_id: str, model: str, input_tokens: int,
                 tool_names: dict[str, str] | None = None) -> None:
        super().__init__()
        self._message_id = message_id
        self._model = model
        self._input_estimate = input_tokens
        self._tool_names = tool_names or {}
        self._started = False
        self._next_block = 0
        self._open: _Item | None = None  # kind and call of the open block
        self._open_index = -1
        self._calls: dict[int, _Call] = {}
        self._alias: dict[int, int] = {}  # upstream index -> the call it means now
        self._pending: list[_Item] = []
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._output_chars = 0
        self._used_tools = False
        self._ending = False
        self._shape = TextShape()  # the hot path: frames that differ only in their text

    # ------------------------------------------------------------------ public

    @property
    def finishing(self) -> bool:
        """The model said it finished; only usage and [DONE] may still come."""
        return self._finish_reason is not None and not self.done

    def _take_frame(self, data: Frame) -> None:
        open_ = self._open
        if type(data) is bytes and open_ is not None and open_.kind == "text":
            text = self._shape.text(data)
            if text is not None:  # the same frame as the last, but for its text
                self._more(text)
                return
        if data in DONE:
            self._end()
            return
        chunk = parse_frame(data)
        if not self._more_text(chunk):
            self._take_chunk(chunk)
        elif type(data) is bytes:
            self._shape.learn(data, b'"content":', chunk["choices"][0]["delta"]["content"])

    def _more(self, text: str) -> None:
        if text:
            self._output_chars += len(text)
            self._out.append(TextDelta(self._open_index, text))

    def feed_completion(self, body: dict[str, Any]) -> list[Event]:
        """A whole non-streaming ``chat.completion``, for upstreams that ignore stream=true.
        Tool arguments still go out as an input_json_delta (peers.md lesson 8)."""
        with malformed("chat.completion body"):
            self._take_completion(body)
        return self._take_out()

    def _take_completion(self, body: dict[str, Any]) -> None:
        if body.get("error"):
            raise _stream_error(body["error"])
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UpstreamProtocolError("The upstream answered without any choices.")
        choice = choices[0]
        message = object_field(choice, "message")
        calls = [dict(c, index=i) for i, c in enumerate(list_field(message, "tool_calls"))]
        delta = dict(message, tool_calls=calls)
        finish = choice.get("finish_reason")
        self._take_chunk({"choices": [{"delta": delta, "finish_reason": finish}],
                          "usage": body.get("usage")})
        self._end()

    def finish(self, *, truncated: bool = False) -> list[Event]:
        """The upstream closed its stream. Finishing is fine once a finish_reason came."""
        self._raise_held()
        if not self.done:
            if self._finish_reason is None:
                where = " in the middle of a frame" if truncated else ""
                raise UpstreamProtocolError(f"The upstream stream ended before it finished{where}.")
            self._end()
        return self._take_out()

    # ------------------------------------------------------------------ chunks

    def _more_text(self, chunk: dict[str, Any]) -> bool:
        """The hot path, nearly every chunk of a long answer: one choice whose delta is only
        more text for the open text block. Anything else takes the general path."""
        open_ = self._open
        if open_ is None or open_.kind != "text" or "error" in chunk or chunk.get("usage"):
            return False
        choices = chunk.get("choices")
        if not choices or len(choices) != 1:
            return False
        choice = choices[0]
        delta = choice.get("delta")
        if not delta or choice.get("finish_reason") or choice.get("index", 0) != 0:
            return False
        content = delta.get("content")
        if type(content) is not str:
            return False
        if len(delta) > 1 and (delta.get("tool_calls") or delta.get("reasoning_content")
                               or delta.get("reasoning") or delta.get("refusal")):
            return False
        self._more(content)
        return True

    def _take_chunk(self, chunk: dict[str, Any]) -> None:
        error = chunk.get("error")
        if error:
            raise _stream_error(error)
        usage = object_field(chunk, "usage")
        if usage:
            self._usage = _usage(usage)
        for choice in list_field(chunk, "choices"):
            if choice.get("index", 0) == 0:
                self._take_choice(choice)
        # The usage chunk is the last thing before [DONE]: no need to wait for a [DONE]
        # that a misbehaving upstream might never send.
        if self._finish_reason is not None and self._usage is not None:
            self._end()

    def _take_choice(self, choice: dict[str, Any]) -> None:
        delta = object_field(choice, "delta")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            self._text("thinking", reasoning)
        content = delta.get("content")
        if content and isinstance(content, str):
            self._text("text", content)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._text("text", refusal)
        for call in list_field(delta, "tool_calls"):
            self._take_tool_call(call)
        reason = choice.get("finish_reason")
        if reason:
            if not isinstance(reason, str):
                raise TypeError("finish_reason")
            self._finish_reason = reason

    def _text(self, kind: str, text: str) -> None:
        open_ = self._open
        if open_ is not None and open_.kind == kind:  # the hot path: more of the same
            self._output_chars += len(text)
            delta = TextDelta if kind == "text" else ThinkingDelta
            self._out.append(delta(self._open_index, text))
            return
        self._route(_Item(kind, text))

    def _take_tool_call(self, piece: dict[str, Any]) -> None:
        key = self._call_key(piece)
        function = object_field(piece, "function")
        args = function.get("arguments") or ""
        if not isinstance(args, str):  # some servers send an object
            args = orjson.dumps(args).decode()
        if key not in self._calls:
            name = text_field(function, "name")
            upstream_id = text_field(piece, "id")
            self._calls[key] = _Call(upstream_id or f"toolu_{secrets.token_hex(12)}",
                                     self._tool_names.get(name, name), upstream_id=upstream_id)
        self._route(_Item("tool", args, key))

    def _call_key(self, piece: dict[str, Any]) -> int:
        """Our key for the call a fragment belongs to. Normally the upstream's index; but
        some servers put every call on index 0, or send no index, and then a new id is a
        new call and the id-less fragments that follow belong to it."""
        index, call_id = piece.get("index"), text_field(piece, "id")
        if type(index) is not int:
            known = next((k for k, c in self._calls.items() if call_id and c.id == call_id),
                         None)
            if known is not None:
                return known
            index = -1  # all index-less fragments share one alias
        key = self._alias.get(index, index)
        current = self._calls.get(key)
        if current is not None and call_id and current.upstream_id and call_id != current.id:
            key = max(self._calls) + 1
        elif key < 0:
            key = max(self._calls, default=-1) + (1 if call_id or not self._calls else 0)
        self._alias[index] = key
        return key

    # ---------------------------------------------------------------- blocks

    def _route(self, item: _Item) -> None:
        open_ = self._open
        if open_ is not None:
            if open_.kind == item.kind and open_.call == item.call:
                self._delta(item)
                return
            if not self._may_close():
                self._pending.append(item)
                return
            self._close()
        if item.kind == "tool" and self._calls[item.call].closed:
            if item.text.strip():
                raise UpstreamProtocolError("The upstream sent arguments for a tool call "
                                            "that had already ended.")
            return
        self._start(item)
        self._delta(item)

    def _begin(self) -> None:
        """MessageStart, before anything else goes out (and only once something does)."""
        if not self._started:
            self._started = True
            self._out.append(MessageStart(self._message_id, self._model,
                                          Usage(input_tokens=self._input_estimate)))

    def _start(self, item: _Item) -> None:
        self._begin()
        index = self._open_index = self._next_block
        self._next_block += 1
        self._open = item
        if item.kind == "tool":
            call = self._calls[item.call]
            call.block = index
            self._used_tools = True
            self._out.append(BlockStart(index, "tool_use", call.id, call.name))
        else:
            self._out.append(BlockStart(index, "text" if item.kind == "text" else "thinking"))

    def _delta(self, item: _Item) -> None:
        if not item.text:
            return
        index = self._open_index
        self._output_chars += len(item.text)
        if item.kind == "text":
            self._out.append(TextDelta(index, item.text))
        elif item.kind == "thinking":
            self._out.append(ThinkingDelta(index, item.text))
        else:
            call = self._calls[item.call]
            call.args.feed(item.text)
            call.has_args = call.has_args or bool(item.text.strip())
            self._out.append(ToolArgsDelta(index, item.text))
            if self._pending and call.args.complete:
                self._close()
                self._drain()

    def _may_close(self) -> bool:
        """The open block may end: it is not a tool call, or the call's arguments are a
        whole object (one more fragment could only spoil them), or the stream is over."""
        open_ = self._open
        if open_ is None or open_.kind != "tool" or self._ending:
            return True
        return self._calls[open_.call].args.complete

    def _close(self) -> None:
        open_ = self._open
        if open_ is None:
            return
        if open_.kind == "tool":
            call = self._calls[open_.call]
            call.closed = True
            if not call.has_args:
                # No arguments at all means "{}": say so, so every client builds an object.
                self._out.append(ToolArgsDelta(self._open_index, "{}"))
        self._out.append(BlockStop(self._open_index))
        self._open = None

    def _drain(self) -> None:
        # What waited goes in order; whatever must still wait is held again, in order, so
        # the fragments of one call never swap places.
        items, self._pending = self._pending, []
        for item in items:
            self._route(item)

    def _end(self) -> None:
        if self.done:
            return
        self._ending = True  # from here on, every open block may close
        # What still waits goes out one call (or kind) at a time, in order of first
        # appearance: interleaved fragments of two calls must not close each other.
        groups: dict[tuple[str, int], list[_Item]] = {}
        for item in self._pending:
            groups.setdefault((item.kind, item.call), []).append(item)
        self._pending = []
        for items in groups.values():
            for item in items:
                self._route(item)
        if self._next_block == 0 and self._finish_reason not in _EMPTY_ANSWERS:
            raise UpstreamProtocolError("The upstream ended without any content.")
        self._close()
        self._begin()
        self._out.append(MessageDelta(self._stop_reason(), self._final_usage()))
        self._out.append(MessageStop())
        self.done = True

    def _stop_reason(self) -> str:
        reason = STOP_REASONS.get(self._finish_reason or "stop", "end_turn")
        if self._used_tools and reason == "end_turn":
            return "tool_use"  # the client only runs tools when told so (peers.md 2)
        if not self._used_tools and reason == "tool_use":
            return "end_turn"  # "tool_calls" with no call: nothing for the client to run
        return reason

    def _final_usage(self) -> Usage:
        if self._usage is not None:
            return self._usage
        return Usage(input_tokens=self._input_estimate,
                     output_tokens=estimate_text("x" * self._output_chars))


def _usage(usage: dict[str, Any]) -> Usage:
    prompt = token_count(usage.get("prompt_tokens")) or 0
    details = usage.get("prompt_tokens_details")
    details = details if type(details) is dict else {}
    cached = min(token_count(details.get("cached_tokens"))
                 or token_count(usage.get("prompt_cache_hit_tokens")) or 0, prompt)
    written = min(token_count(details.get("cache_write_tokens")) or 0, prompt - cached)
    return Usage(input_tokens=prompt - cached - written,
                 output_tokens=token_count(usage.get("completion_tokens")) or 0,
                 cache_read_input_tokens=cached, cache_creation_input_tokens=written)





def _stream_error(error: Any) -> UpstreamStreamError:
    if not isinstance(error, dict):
        return UpstreamStreamError(f"The upstream reported an error: {error}")
    message = str(error.get("message") or "The upstream reported an error.")
    marker = f"{error.get('type', '')} {error.get('code', '')}".lower()
    if "rate" in marker or "429" in marker:
        return UpstreamStreamError(message, status=429, kind="rate_limit")
    if "overload" in marker or "503" in marker or "capacity" in marker:
        return UpstreamStreamError(message, status=529, kind="overloaded")
    return UpstreamStreamError(message)
