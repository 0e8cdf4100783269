"""The Claude Code CLI's stream-json output (one JSON object a line) -> canonical events.

Sans-I/O. With ``--include-partial-messages`` the CLI passes each Anthropic stream event
on as a ``stream_event`` line as it arrives; those become canonical events at once. Around
them (``tests/fixtures/claude_code_cli``, 2.1.330):

* ``system`` lines (init, status, api_retry, thinking_tokens …), ``control_response``s to
  the proxy's own requests, ``user`` lines (results of the CLI's own tools) and
  ``rate_limit_event``s say nothing to the client, but the decoder keeps what it needs:
  the session id, the last retry's cause, a rejected rate limit's reset time;
* an ``assistant`` line repeats a block that was already streamed (its message id had a
  ``message_start``): skipped. One whose message was not streamed (no partial messages,
  or the CLI's non-streaming retry) is replayed as whole blocks;
* one CLI turn may hold several API calls (the CLI running its own tools between them):
  one canonical message, blocks numbered on across them, ended by the ``result`` line,
  which brings the stop reason and the usage of all the calls;
* tool calls of the CLI's own tools are the CLI's business (it runs them and goes on), so
  they are skipped. Tools named in ``client_tools`` are the client's: they stream as
  ``tool_use`` blocks and end the message with ``tool_use`` as soon as their API call
  ends, so the CLI never answers them itself (peers.md, lesson 13);
* when an API stream breaks, the CLI ends it with ``abandoned_blocks`` and retries. If
  what it abandoned already reached the client, that cannot be taken back: an error;
* failures (an error result, an API error the CLI gave up on, a rejected rate limit, no
  login, a refused model) raise ``UpstreamError``s naming what the CLI reported.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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
from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.failures import reported_error
from proxy.dialects.stream_decoding import Frame, StreamDecoder, parse_frame
from proxy.errors import UpstreamProtocolError, UpstreamStreamError

ABANDONED = ("The Claude Code CLI's upstream stream broke after part of the answer was "
             "sent; the CLI retried, but what was sent cannot be taken back.")


class ClaudeCodeStreamDecoder(StreamDecoder):
    def __init__(self, *, message_id: str, model: str, input_tokens: int,
                 clock: Callable[[], float], client_tools: Collection[str] = ()) -> None:
        super().__init__()
        self._message_id = message_id
        self._model = model
        self._clock = clock  # wall-clock seconds, for a rate limit's reset time
        self._client_tools = frozenset(client_tools)
        self._usage = Usage(input_tokens=input_tokens)
        self._started = False
        self._next = 0
        self._blocks: dict[int, int] = {}  # the streamed call's block index -> canonical
        self._open: int | None = None
        self._shown: set[int] = set()  # canonical blocks with more than their start sent
        self._silent_tools: set[int] = set()  # tool blocks with no argument fragment yet
        self._streaming: str | None = None  # the API message now streaming
        self._streamed: set[str] = set()  # API messages whose blocks came as stream events
        self._turn_stop: str | None = None
        self._client_tool_called = False
        self._rejected: dict[str, Any] | None = None
        self.session_id: str | None = None  # the CLI's, from its init line
        self.last_retry: str | None = None  # the cause of the CLI's last API retry

    def finish(self, *, truncated: bool = False) -> list[Event]:
        self._raise_held()
        if not self.done:
            where = " in the middle of a line" if truncated else ""
            raise UpstreamProtocolError(
                f"The Claude Code CLI's output ended before its result line{where}.")
        return []

    def _take_frame(self, data: Frame) -> None:
        line = parse_frame(data)
        kind = line.get("type")
        if kind == "stream_event":
            if not line.get("parent_tool_use_id"):  # else a subagent's own stream
                self._stream_event(line, line.get("event") or {})
        elif kind == "assistant":
            self._assistant(line)
        elif kind == "result":
            self._result(line)
        elif kind == "system":
            self._system(line)
        elif kind == "rate_limit_event":
            self._rate_limit(line.get("rate_limit_info") or {})
        elif kind == "control_response":
            self._control_response(line)
        elif kind == "user" and self._client_tool_called and self._streaming is None:
            self._end("tool_use")  # the CLI answered a client's tool itself: too late

    # ----------------------------------------------------------------- stream events

    def _stream_event(self, line: dict[str, Any], event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            self._delta(event.get("index", -1), event.get("delta") or {})
        elif kind == "content_block_start":
            self._start(event.get("index", -1), event.get("content_block") or {})
        elif kind == "content_block_stop":
            self._stop(self._blocks.get(event.get("index", -1)))
        elif kind == "message_start":
            self._message_start(event.get("message") or {})
        elif kind == "message_delta":
            self._turn_stop = (event.get("delta") or {}).get("stop_reason") or self._turn_stop
            self._usage = _merge_usage(self._usage, event.get("usage") or {})
        elif kind == "message_stop":
            self._message_stop(line.get("abandoned_blocks"))

    def _message_start(self, message: dict[str, Any]) -> None:
        self._streaming = str(message.get("id") or "")
        self._streamed.add(self._streaming)
        self._blocks = {}
        if not self._started:
            self._usage = _merge_usage(self._usage, message.get("usage") or {})
            self._begin()

    def _start(self, upstream_index: int, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") not in self._client_tools:
            return  # the CLI's own tool: it runs it and goes on
        if kind not in ("text", "thinking", "tool_use"):
            return  # redacted_thinking, server tools: nothing the client can use
        self._begin()
        self._close_open()
        index = self._blocks[upstream_index] = self._next
        self._next += 1
        self._open = index
        if kind == "tool_use":
            self._client_tool_called = True
            self._silent_tools.add(index)
            self._shown.add(index)  # a call is news even before its arguments
            self._out.append(BlockStart(index, "tool_use", str(block.get("id", "")),
                                        str(block.get("name", ""))))
        else:
            self._out.append(BlockStart(index, kind))

    def _delta(self, upstream_index: int, delta: dict[str, Any]) -> None:
        index = self._blocks.get(upstream_index)
        if index is None:
            return
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self._out.append(TextDelta(index, delta["text"]))
        elif kind == "thinking_delta" and delta.get("thinking"):
            self._out.append(ThinkingDelta(index, delta["thinking"]))
        elif kind == "signature_delta" and delta.get("signature"):
            self._out.append(SignatureDelta(index, delta["signature"]))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            self._silent_tools.discard(index)
            self._out.append(ToolArgsDelta(index, delta["partial_json"]))
        else:
            return
        self._shown.add(index)

    def _stop(self, index: int | None) -> None:
        if index is None or index != self._open:
            return
        if index in self._silent_tools:
            self._out.append(ToolArgsDelta(index, "{}"))  # a call without arguments
        self._out.append(BlockStop(index))
        self._open = None

    def _message_stop(self, abandoned: Any) -> None:
        if isinstance(abandoned, dict):
            self._abandon(abandoned)
        elif self._client_tool_called and self._turn_stop == "tool_use":
            self._end("tool_use")
        self._streaming = None

    def _abandon(self, abandoned: dict[str, Any]) -> None:
        """The CLI gave up on a broken stream and will retry (a whole copy may follow)."""
        start = abandoned.get("from_block_index", 0)
        lost = [i for upstream, i in self._blocks.items()
                if upstream >= start and i in self._shown]
        self._streamed.discard(str(abandoned.get("api_message_id") or self._streaming))
        if lost:
            raise UpstreamStreamError(ABANDONED, status=502, kind="api_error")
        self._close_open()  # an empty block: harmless
        self._blocks = {}

    # --------------------------------------------------------------- whole messages

    def _assistant(self, line: dict[str, Any]) -> None:
        if line.get("parent_tool_use_id"):
            return
        message = line.get("message") or {}
        if line.get("error") or line.get("is_api_error_message"):
            raise reported_error(_text_of(message), error=line.get("error"),
                                 status=line.get("api_error_status"),
                                 rejected=self._rejected, now=self._clock())
        if str(message.get("id") or "") in self._streamed:
            return  # its blocks came as stream events already
        self._begin()
        for block in message.get("content") or ():
            self._replay(block)

    def _replay(self, block: dict[str, Any]) -> None:
        """One whole block, as the events that would have streamed it."""
        kind = block.get("type")
        upstream = -1 - self._next  # a key no stream event uses
        if kind == "text":
            self._start(upstream, block)
            self._delta(upstream, {"type": "text_delta", "text": block.get("text", "")})
        elif kind == "thinking":
            self._start(upstream, block)
            self._delta(upstream, {"type": "thinking_delta",
                                   "thinking": block.get("thinking", "")})
            self._delta(upstream, {"type": "signature_delta",
                                   "signature": block.get("signature", "")})
        elif kind == "tool_use":
            self._start(upstream, block)
            arguments = orjson.dumps(block.get("input") or {}).decode()
            self._delta(upstream, {"type": "input_json_delta", "partial_json": arguments})
        self._stop(self._blocks.pop(upstream, None))

    def _result(self, line: dict[str, Any]) -> None:
        if line.get("is_error") or line.get("subtype", "success") != "success":
            errors = line.get("errors")
            text = line.get("result") or ("; ".join(map(str, errors)) if errors else "")
            raise reported_error(str(text or line.get("subtype") or "an error result"),
                                 status=line.get("api_error_status"),
                                 rejected=self._rejected, now=self._clock())
        self._usage = _merge_usage(self._usage, line.get("usage") or {})
        self._end(line.get("stop_reason") or self._turn_stop or "end_turn")

    # ------------------------------------------------------------------------ the rest

    def _system(self, line: dict[str, Any]) -> None:
        subtype = line.get("subtype")
        if subtype == "init":
            self.session_id = line.get("session_id")
        elif subtype == "api_retry":
            status, error = line.get("error_status"), line.get("error")
            self.last_retry = " ".join(str(x) for x in (status, error) if x is not None)

    def _rate_limit(self, info: dict[str, Any]) -> None:
        # Rejected but paid from extra usage, the request still goes through.
        if info.get("status") == "rejected" and not info.get("isUsingOverage"):
            self._rejected = info

    def _control_response(self, line: dict[str, Any]) -> None:
        for request_id, what in ((control.INIT_ID, "session settings"),
                                 (control.MODEL_ID, "model")):
            answer = control.answer_to(line, request_id)
            if answer is not None and answer.get("subtype") == "error":
                # Going on would answer from another model, or with another prompt.
                unknown = answer.get("error_code") == "not_found"
                raise UpstreamStreamError(
                    f"The Claude Code CLI refused the {what}: {answer.get('error')}",
                    status=404 if unknown else 502, kind="not_found" if unknown else "api_error")

    def _begin(self) -> None:
        if not self._started:
            self._started = True
            self._out.append(MessageStart(self._message_id, self._model, self._usage))

    def _close_open(self) -> None:
        if self._open is not None:
            self._stop(self._open)

    def _end(self, stop_reason: str) -> None:
        self._begin()
        self._close_open()
        self._out.append(MessageDelta(stop_reason, self._usage))
        self._out.append(MessageStop())
        self.done = True


def _text_of(message: dict[str, Any]) -> str:
    return "".join(str(block.get("text", "")) for block in message.get("content") or ()
                   if isinstance(block, dict) and block.get("type") == "text")


def _merge_usage(usage: Usage, update: dict[str, Any]) -> Usage:
    """Counts the CLI reports replace the ones before (the result's are the turn's sums)."""
    def pick(name: str, current: int) -> int:
        value = update.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else current

    return Usage(input_tokens=pick("input_tokens", usage.input_tokens),
                 output_tokens=pick("output_tokens", usage.output_tokens),
                 cache_read_input_tokens=pick("cache_read_input_tokens",
                                              usage.cache_read_input_tokens),
                 cache_creation_input_tokens=pick("cache_creation_input_tokens",
                                                  usage.cache_creation_input_tokens))
