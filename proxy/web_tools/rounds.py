"""One client response made of several rounds of the backend model: the events the client
sees, and the conversation the next round is asked with.

Sans-I/O. The loop (``loop.py``) feeds every upstream event of every round to ``Rounds``
and gets back what goes to the client, in order, with ``WebCall``s where the model
called a web tool (its block swallowed: the client sees a server tool block instead):

    for item in rounds.feed(event):
        WebCall -> the loop plans and runs it, and shows it with ``use_blocks`` and
                   ``result_blocks`` (which also write it into the conversation)
        Event   -> to the client as is

Block indices are renumbered across rounds (each round's upstream counts from 0; the client
sees one message). Only the first round's ``message_start`` goes out. A round that called
web tools and no client tool is followed by another (its ``message_delta`` and
``message_stop`` held back); the last round's ``message_delta`` carries the usage of
every round, summed, with the server tool counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    Part,
    ServerToolUse,
    SignatureDelta,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolArgsDelta,
    ToolResultPart,
    ToolUsePart,
    Usage,
    parse_tool_arguments,
)
from proxy.web_tools.session import Outcome, server_tool_id

# Rounds of the model in one response. A round may hold several calls; a model that still
# calls web tools after this many gets its answer ended with ``pause_turn``, Anthropic's
# own way of saying "send this back to go on" (the next turn's history carries the calls).
MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class WebCall:
    """A model's call of a web tool, whole: its block has closed."""

    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(slots=True)
class _Open:
    """A block of this round still being read: what the conversation needs of it."""

    kind: str
    tool_id: str = ""
    tool_name: str = ""
    pieces: list[str] = field(default_factory=list)
    signature: str = ""
    web: bool = False  # a web tool call: swallowed, its client index not yet given


class Rounds:
    def __init__(self, handles: Callable[[str], bool], message_id: str, *,
                 server_usage: Callable[[], ServerToolUse] | None = None,
                 note: str | None = None, max_rounds: int = MAX_ROUNDS) -> None:
        """``handles``: whether a function name is a web tool the proxy runs;
        ``server_usage``: the counts for ``usage.server_tool_use``; ``note``: a text block
        shown first (why the web tools are not there)."""
        self._handles, self._message_id = handles, message_id
        self._server_usage, self._note = server_usage, note
        self.max_rounds = max_rounds
        self.round = 1
        self.again = False  # after this round's end: ask the model once more
        self.finished = False  # the client has its message_delta
        self._next = 0  # the client's next block index
        self._started = False
        self._usage = Usage()
        self._uses = 0  # server_tool_use blocks shown so far, for their ids
        self._new_round()

    def _new_round(self) -> None:
        self._index: dict[int, int] = {}  # this round's upstream index -> the client's
        self._open: dict[int, _Open] = {}
        self._parts: list[Part] = []  # the round's assistant turn, for the conversation
        self._results: list[ToolResultPart] = []
        self._client_tools = False

    # -- events in, events out --

    def feed(self, event: Event) -> list[Event | WebCall]:
        if isinstance(event, TextDelta | ThinkingDelta | ToolArgsDelta | SignatureDelta):
            return self._delta(event)
        if isinstance(event, BlockStart):
            return self._start(event)
        if isinstance(event, BlockStop):
            return self._stop(event)
        if isinstance(event, MessageStart):
            return self._message_start(event)
        if isinstance(event, MessageDelta):
            return self._message_delta(event)
        if isinstance(event, MessageStop):
            return [] if self.again else [event]
        raise AssertionError(f"unknown event {event!r}")

    def _message_start(self, event: MessageStart) -> list[Event | WebCall]:
        if self._started:
            return []  # the client has one message: later rounds' starts are not news
        self._started = True
        if self._note is None:
            return [event]
        index = self._take_index()
        return [event, BlockStart(index, "text"), TextDelta(index, self._note),
                BlockStop(index)]

    def _start(self, event: BlockStart) -> list[Event | WebCall]:
        web = event.kind == "tool_use" and self._handles(event.tool_name)
        self._open[event.index] = _Open(event.kind, event.tool_id, event.tool_name, web=web)
        if web:
            return []
        if event.kind == "tool_use":
            self._client_tools = True
        index = self._index[event.index] = self._take_index()
        return [replace(event, index=index)]

    def _delta(self, event: TextDelta | ThinkingDelta | ToolArgsDelta | SignatureDelta
               ) -> list[Event | WebCall]:
        block = self._open.get(event.index)
        if block is not None:
            if isinstance(event, SignatureDelta):
                block.signature += event.signature
            else:
                block.pieces.append(event.partial_json if isinstance(event, ToolArgsDelta)
                                    else event.text)
            if block.web:
                return []
        return [replace(event, index=self._index.get(event.index, event.index))]

    def _stop(self, event: BlockStop) -> list[Event | WebCall]:
        block = self._open.pop(event.index, None)
        if block is not None and block.web:
            arguments = "".join(block.pieces)
            call_id = block.tool_id or f"call_web_{self.round}_{event.index}"
            self._parts.append(ToolUsePart(call_id, block.tool_name,
                                           parse_tool_arguments(arguments)))
            return [WebCall(call_id, block.tool_name, arguments)]
        if block is not None:
            self._keep(block)
        return [replace(event, index=self._index.get(event.index, event.index))]

    def _keep(self, block: _Open) -> None:
        text = "".join(block.pieces)
        if block.kind == "text" and text:
            self._parts.append(TextPart(text))
        elif block.kind == "thinking" and (text or block.signature):
            self._parts.append(ThinkingPart(text, block.signature))
        elif block.kind == "tool_use":
            self._parts.append(ToolUsePart(block.tool_id, block.tool_name,
                                           parse_tool_arguments(text)))

    def _message_delta(self, event: MessageDelta) -> list[Event | WebCall]:
        self._usage = _added(self._usage, event.usage)
        if self._results and not self._client_tools and event.stop_reason != "refusal":
            if self.round < self.max_rounds:
                self.again = True
                return []
            event = replace(event, stop_reason="pause_turn")
        self.finished = True
        usage = self._usage
        if self._server_usage is not None:
            usage = replace(usage, server_tool_use=self._server_usage())
        return [replace(event, usage=usage)]

    # -- the server tool blocks --

    def use_blocks(self, call: WebCall, tool_input: dict[str, object]) -> tuple[str, list[Event]]:
        """The ``server_tool_use`` block showing ``call``; returns its id, which the result
        block answers."""
        tool_id = server_tool_id(self._message_id, self._uses)
        self._uses += 1
        index = self._take_index()
        return tool_id, [BlockStart(index, "server_tool_use", tool_id=tool_id,
                                    tool_name=call.name),
                         ToolArgsDelta(index, orjson.dumps(tool_input).decode()),
                         BlockStop(index)]

    def result_blocks(self, call: WebCall, tool_id: str, outcome: Outcome) -> list[Event]:
        """The result block, and the result written into the conversation for the model."""
        self._results.append(ToolResultPart(call.call_id, (TextPart(outcome.model_text),),
                                            is_error=outcome.is_error))
        index = self._take_index()
        return [BlockStart(index, outcome.kind, tool_id=tool_id, result=outcome.result),
                BlockStop(index)]

    # -- between rounds --

    def next_round(self, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """The conversation for the next round: ``messages`` (the last round's), then what
        the model wrote and called in this round, then the results."""
        turns = (*messages, Message("assistant", tuple(self._parts)),
                 Message("user", tuple(self._results)))
        self.round += 1
        self.again = False
        self._new_round()
        return turns

    def _take_index(self) -> int:
        index = self._next
        self._next += 1
        return index


def _added(total: Usage, more: Usage) -> Usage:
    return Usage(input_tokens=total.input_tokens + more.input_tokens,
                 output_tokens=total.output_tokens + more.output_tokens,
                 cache_read_input_tokens=total.cache_read_input_tokens
                 + more.cache_read_input_tokens,
                 cache_creation_input_tokens=total.cache_creation_input_tokens
                 + more.cache_creation_input_tokens)
