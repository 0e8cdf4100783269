"""canonical events -> OpenAI Chat Completions SSE chunks (protocols.md 2.4, 3, 4.5).

Sans-I/O. What the openai SDK's stream helper asserts, kept here: ``role`` only in the
first chunk; each tool call numbered 0, 1, 2… among tool calls (not among blocks), with
``id``, ``type`` and ``name`` only in its first piece; thinking as ``reasoning_content``;
one finish chunk; the usage chunk (``choices: []``) last and only when asked; then
``[DONE]``. Every chunk carries the same id, created and model. Keep-alives are SSE
comments: a data-less event crashes the SDK.

Server tool blocks are not the client's to see (no chunk); web search results come back as
one ``annotations`` delta of ``url_citation``s just before the finish chunk, once: the
SDK's stream helper merges a second list of annotations by ``index``, which they lack.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from proxy.canonical import (
    BlockStart,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
    WebSearchHit,
)
from proxy.dialects.openai.responses import FINISH_REASONS, error_body, url_citations, usage_json
from proxy.sse import encode_data

PING = b": ping\n\n"
DONE = encode_data(b"[DONE]")
_dumps = orjson.dumps
_TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'


class OpenAIStreamEncoder:
    __slots__ = ("_after", "_created", "_head", "_hits", "_id", "_include_usage", "_model",
                 "_tool_index", "_tools", "_usage", "_written")

    def __init__(self, *, chunk_id: str, model: str, include_usage: bool) -> None:
        self._id, self._model, self._include_usage = chunk_id, model, include_usage
        created = self._created = int(time.time())
        # Every chunk starts with the same bytes, up to its delta.
        self._head = (b'data: {"id":' + _dumps(chunk_id) + b',"object":"chat.completion.chunk"'
                      b',"created":%d,"model":' % created + _dumps(model)
                      + b',"choices":[{"index":0,"delta":')
        self._tools: dict[int, int] = {}  # block index -> tool call index
        self._tool_index = -1
        self._usage = Usage()
        self._written = 0  # characters of content so far, where citations count from
        self._hits: list[WebSearchHit] = []
        self._after: list[str] | None = None  # the content since the first search results

    def encode(self, events: list[Event]) -> bytes:
        return b"".join([self._chunk(event) for event in events])

    def _chunk(self, event: Event) -> bytes:
        if type(event) is TextDelta:
            self._written += len(event.text)
            if self._after is not None:
                self._after.append(event.text)
            return self._head + b'{"content":' + _dumps(event.text) + b"}" + _TAIL
        if type(event) is ThinkingDelta:
            return self._head + b'{"reasoning_content":' + _dumps(event.text) + b"}" + _TAIL
        if type(event) is ToolArgsDelta:
            call = self._tools.get(event.index)
            if call is None:
                return b""  # a server tool's input
            return self._delta({"tool_calls": [{"index": call, "function": {
                "arguments": event.partial_json}}]})
        if isinstance(event, BlockStart) and event.kind == "tool_use":
            self._tool_index += 1
            self._tools[event.index] = self._tool_index
            return self._delta({"tool_calls": [{
                "index": self._tool_index, "id": event.tool_id, "type": "function",
                "function": {"name": event.tool_name, "arguments": ""}}]})
        if isinstance(event, BlockStart) and event.kind == "web_search_tool_result":
            if isinstance(event.result, tuple) and event.result:
                self._hits += event.result
                if self._after is None:
                    self._after = []
            return b""
        if isinstance(event, MessageStart):
            return self._head + b'{"role":"assistant","content":""}' + _TAIL
        if isinstance(event, MessageDelta):
            self._usage = event.usage
            reason = FINISH_REASONS.get(event.stop_reason, "stop")
            return (self._annotations() + self._head + b'{},"logprobs":null,"finish_reason":'
                    + _dumps(reason) + b"}]}\n\n")
        if isinstance(event, MessageStop):
            return self._usage_chunk() + DONE if self._include_usage else DONE
        return b""  # block starts and stops of text and thinking, signatures: nothing

    def _annotations(self) -> bytes:
        if self._after is None:
            return b""
        text = "".join(self._after)
        cited = url_citations(self._hits, text, self._written - len(text))
        return self._delta({"annotations": cited})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._head + _dumps(delta) + _TAIL

    def _usage_chunk(self) -> bytes:
        body = {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model, "choices": [], "usage": usage_json(self._usage)}
        return encode_data(_dumps(body))


def error_frame(kind: str, message: str) -> bytes:
    """The in-stream error; the stream then ends without ``[DONE]``."""
    return encode_data(_dumps(error_body(kind, message)))
