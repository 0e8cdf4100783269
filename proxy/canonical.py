"""The common tongue between dialects: canonical requests, stream events, and the collector.

Sans-I/O (stdlib only). Events follow Anthropic's content-block stream, the richer of the
two: MessageStart, then for each block in order BlockStart, its deltas, BlockStop, then one
MessageDelta (stop reason, final usage) and MessageStop. Blocks never interleave; a
decoder whose upstream interleaves (parallel OpenAI tool calls) buffers until it may emit.
Failures are exceptions from ``proxy.errors``, not events, so a stream that failed can
never be mistaken for one that finished.

Stop reasons are Anthropic's names: end_turn, max_tokens, stop_sequence, tool_use,
pause_turn, refusal.

Server tools (web search and fetch, run by the proxy or by Anthropic) are blocks too: a
``server_tool_use`` block streams its input like ``tool_use``; a ``web_search_tool_result``
or ``web_fetch_tool_result`` block carries its whole content in its ``BlockStart``
(``result``) and has no deltas, as Anthropic streams them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

BlockKind = Literal["text", "thinking", "tool_use", "server_tool_use",
                    "web_search_tool_result", "web_fetch_tool_result"]
# The block kinds whose content is whole in their BlockStart.
RESULT_KINDS = frozenset({"web_search_tool_result", "web_fetch_tool_result"})

# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image: ``data`` (base64) with ``media_type``, or a ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document: base64 ``data`` (PDF), plain ``text``, or a ``url``."""

    media_type: str | None = None
    data: str | None = None
    text: str | None = None
    url: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ToolUsePart:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    tool_use_id: str
    content: tuple[TextPart | ImagePart | DocumentPart, ...]
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    text: str
    signature: str = ""


Part = TextPart | ImagePart | DocumentPart | ToolUsePart | ToolResultPart | ThinkingPart


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant", "system"]
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str | None
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` | ``any`` (a tool must be called) | ``tool`` (``name``) | ``none``."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A chat request in no dialect in particular."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[str, ...] = ()
    max_tokens: int | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None  # low | medium | high, when thinking is wanted
    response_schema: dict[str, Any] | None = None  # JSON schema the answer must follow
    json_object: bool = False  # any JSON object will do (OpenAI's json_object mode)
    user_id: str | None = None
    dropped: tuple[str, ...] = ()  # what the inbound dialect dropped on purpose, for logs
    # Web search and fetch the client asked the proxy to run (proxy/web_tools): Anthropic's
    # server tool definitions (web_search_*, web_fetch_*) and OpenAI's web_search_options,
    # as sent. Renderers ignore both; the web tool loop reads them.
    server_tools: tuple[dict[str, Any], ...] = ()
    web_search_options: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ServerToolUse:
    """How many server tool calls a response made (Anthropic's ``usage.server_tool_use``)."""

    web_search_requests: int = 0
    web_fetch_requests: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    server_tool_use: ServerToolUse | None = None  # None: no server tool was offered or run


@dataclass(frozen=True, slots=True)
class WebSearchHit:
    """One web search result, as Anthropic's ``web_search_result`` has it. ``encrypted_content``
    is opaque to clients: Anthropic's is encrypted; ours is the snippet the model was given."""

    url: str
    title: str
    encrypted_content: str
    page_age: str | None = None


@dataclass(frozen=True, slots=True)
class WebFetchPage:
    """A fetched page: its text (a plain-text document), its URL, when it was retrieved."""

    url: str
    text: str
    title: str | None = None
    retrieved_at: str | None = None  # ISO 8601


@dataclass(frozen=True, slots=True)
class ServerToolError:
    """A server tool call that failed; ``error_code`` is one of the Anthropic SDK's
    ``WebSearchToolResultErrorCode`` / ``WebFetchToolResultErrorCode`` literals."""

    error_code: str


# A web_search_tool_result holds hits or an error; a web_fetch_tool_result a page or an error.
ServerToolResult = tuple[WebSearchHit, ...] | WebFetchPage | ServerToolError


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class BlockStart:
    """``tool_id``/``tool_name``: of a tool_use or server_tool_use block; for a result kind,
    ``tool_id`` is the ``tool_use_id`` it answers and ``result`` its whole content."""

    index: int
    kind: BlockKind
    tool_id: str = ""
    tool_name: str = ""
    result: ServerToolResult | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    index: int
    signature: str


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    index: int
    partial_json: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    index: int


@dataclass(frozen=True, slots=True)
class MessageDelta:
    stop_reason: str
    usage: Usage
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class MessageStop:
    pass


Event = (
    MessageStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | ToolArgsDelta
    | BlockStop
    | MessageDelta
    | MessageStop
)


def coalesce(events: list[Event]) -> list[Event]:
    """Join adjacent deltas of the same block into one: what one upstream read brought
    goes out as one frame per block. Nothing waits for it (the events already exist
    together), the text is unchanged, and a fast upstream costs a client a few frames per
    read instead of hundreds."""
    if len(events) < 3:
        return events
    out: list[Event] = []
    run: list[str] = []
    for event in events:
        kind = type(event)
        last = out[-1] if out else None
        if (kind is TextDelta or kind is ThinkingDelta or kind is ToolArgsDelta) \
                and type(last) is kind and last.index == event.index:  # type: ignore[union-attr]
            if not run:
                run.append(_delta_text(last))
            run.append(_delta_text(event))  # type: ignore[arg-type]
            continue
        if run:
            out[-1] = _with_text(out[-1], "".join(run))  # type: ignore[arg-type]
            run = []
        out.append(event)
    if run:
        out[-1] = _with_text(out[-1], "".join(run))  # type: ignore[arg-type]
    return out


def _delta_text(event: TextDelta | ThinkingDelta | ToolArgsDelta) -> str:
    return event.partial_json if isinstance(event, ToolArgsDelta) else event.text


def _with_text(event: TextDelta | ThinkingDelta | ToolArgsDelta,
               text: str) -> TextDelta | ThinkingDelta | ToolArgsDelta:
    return type(event)(event.index, text)


# -------------------------------------------------------------------------- collector


@dataclass(slots=True)
class Block:
    kind: BlockKind
    text: str = ""
    signature: str = ""
    tool_id: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    result: ServerToolResult | None = None  # the content of a web_*_tool_result block


@dataclass(slots=True)
class CollectedMessage:
    id: str = ""
    model: str = ""
    blocks: list[Block] = field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    complete: bool = False


class Collector:
    """Folds a stream of events into one message: how non-streaming answers are made."""

    def __init__(self) -> None:
        self.message = CollectedMessage()
        self._pieces: dict[int, list[str]] = {}

    def feed(self, events: list[Event]) -> None:
        for event in events:
            self._take(event)

    def _take(self, event: Event) -> None:
        msg = self.message
        if isinstance(event, TextDelta | ThinkingDelta | ToolArgsDelta):
            piece = event.partial_json if isinstance(event, ToolArgsDelta) else event.text
            self._pieces[event.index].append(piece)
        elif isinstance(event, BlockStart):
            msg.blocks.append(Block(event.kind, tool_id=event.tool_id, tool_name=event.tool_name,
                                    result=event.result))
            self._pieces[event.index] = []
        elif isinstance(event, BlockStop):
            self._close(event.index)
        elif isinstance(event, SignatureDelta):
            msg.blocks[event.index].signature += event.signature
        elif isinstance(event, MessageStart):
            msg.id, msg.model, msg.usage = event.id, event.model, event.usage
        elif isinstance(event, MessageDelta):
            msg.stop_reason, msg.stop_sequence = event.stop_reason, event.stop_sequence
            msg.usage = event.usage
        elif isinstance(event, MessageStop):
            msg.complete = True

    def _close(self, index: int) -> None:
        block = self.message.blocks[index]
        joined = "".join(self._pieces.pop(index, ()))
        if block.kind == "tool_use" or block.kind == "server_tool_use":
            block.tool_input = parse_tool_arguments(joined)
        elif block.kind not in RESULT_KINDS:
            block.text = joined


def parse_tool_arguments(raw: str) -> dict[str, Any]:
    """Tool arguments as an object: empty means ``{}``; anything else not an object is
    kept, unparsed, under ``_raw`` so the client sees what the model actually said. So is
    an object nested too deep to be written again inside a response body (orjson reads
    1024 levels but writes 254)."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) and _writable(value) else {"_raw": raw}


def _writable(value: dict[str, Any]) -> bool:
    """Whether orjson can write ``value`` as deep in a body as a response puts it."""
    wrapped: Any = value
    for _ in range(_RESPONSE_LEVELS):
        wrapped = (wrapped,)
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return False
    return True


_RESPONSE_LEVELS = 8  # a tool input's depth in either response body, and room to spare
