"""The client's two dialects without I/O: what to send, and what the answers mean.

For each dialect (``anthropic``: ``/v1/messages``; ``openai``: ``/v1/chat/completions``)
this builds the request headers and body, reads a non-streaming answer, and decodes a
stream one SSE event at a time into ``("text" | "thinking", piece)`` pairs while tallying
the model, stop reason and token counts. Error bodies and in-stream error events of either
dialect become one ``ProxyClientError``. No aiohttp, no asyncio: ``client.py`` does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from proxy.sse import SSEEvent

ANTHROPIC = "anthropic"
OPENAI = "openai"
DIALECTS = (ANTHROPIC, OPENAI)
ANTHROPIC_VERSION = "2023-06-01"

PieceKind = Literal["text", "thinking"]
Piece = tuple[PieceKind, str]


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished answer. ``ttfb_s``: seconds from sending the request to the first
    answer token (streaming) or to the response headers (non-streaming); ``total_s``: to
    the end. Token counts are None when the proxy reported none. ``thinking`` holds the
    model's reasoning, never part of ``text``."""

    text: str
    model: str
    stop_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    ttfb_s: float | None
    total_s: float
    thinking: str = ""

    def __str__(self) -> str:
        """The text, so ``print(await client.complete(...))`` prints the answer, as with
        claudebridge's BridgeClient."""
        return self.text


class ProxyClientError(Exception):
    """The proxy (or the way to it) failed. ``status`` is the HTTP status of an error
    answer, or None for an error inside a stream, a stream cut short, or no connection;
    ``type`` is the error's type as the proxy named it (``rate_limit_error``…)."""

    def __init__(self, status: int | None, type: str, message: str) -> None:
        super().__init__(status, type, message)
        self.status = status
        self.type = type
        self.message = message

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.type}: {self.message}"


@dataclass(frozen=True, slots=True)
class Prompt:
    """One single-turn request, in no dialect yet."""

    text: str
    model: str
    max_tokens: int = 1024
    system: str | None = None
    stream: bool = True


# --- requests ----------------------------------------------------------------------------


def check_dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
    return dialect


def chat_path(dialect: str) -> str:
    return "/v1/messages" if dialect == ANTHROPIC else "/v1/chat/completions"


def headers(dialect: str, api_key: str | None, *, json_body: bool = False) -> dict[str, str]:
    """Auth as each dialect's SDK sends it; ``anthropic-version`` also picks the Anthropic
    shape of ``/v1/models``."""
    out: dict[str, str] = {"content-type": "application/json"} if json_body else {}
    if dialect == ANTHROPIC:
        out["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            out["x-api-key"] = api_key
    elif api_key:
        out["authorization"] = f"Bearer {api_key}"
    return out


def request_body(dialect: str, prompt: Prompt) -> bytes:
    user = {"role": "user", "content": prompt.text}
    body: dict[str, Any] = {"model": prompt.model, "max_tokens": prompt.max_tokens,
                            "stream": prompt.stream}
    if dialect == ANTHROPIC:
        body["messages"] = [user]
        if prompt.system:
            body["system"] = prompt.system
    else:
        system = [{"role": "system", "content": prompt.system}] if prompt.system else []
        body["messages"] = [*system, user]
        if prompt.stream:
            body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


# --- answers -----------------------------------------------------------------------------


def _loads(raw: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise ProxyClientError(None, "bad_response",
                               f"{what} is not JSON: {text[:200]!r}") from None


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    value = _loads(raw, what)
    if not isinstance(value, dict):
        raise ProxyClientError(None, "bad_response", f"{what} is not a JSON object")
    return value


def error_from_body(status: int | None, raw: bytes | str) -> ProxyClientError:
    """Either dialect's error body (``{"error": {"type", "message"}}``, Anthropic's with
    an outer ``"type": "error"``); anything else is reported as it came."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code") or "error"
        return ProxyClientError(status, str(kind), str(error.get("message", "")))
    if isinstance(error, str):
        return ProxyClientError(status, "error", error)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return ProxyClientError(status, "http_error", text.strip()[:500] or "(empty body)")


def model_ids(body: dict[str, Any]) -> list[str]:
    """The ids in either dialect's model list (both keep them under ``data``)."""
    data = body.get("data")
    if not isinstance(data, list):
        return []
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]


class Tally:
    """What an answer said besides its text, gathered as it arrives."""

    __slots__ = ("input_tokens", "model", "output_tokens", "stop_reason", "text", "thinking")

    def __init__(self, model: str) -> None:
        self.model = model
        self.stop_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.text: list[str] = []
        self.thinking: list[str] = []

    def usage(self, usage: Any, inp: str, out: str) -> None:
        if not isinstance(usage, dict):
            return
        if isinstance(usage.get(inp), int):
            self.input_tokens = usage[inp]
        if isinstance(usage.get(out), int):
            self.output_tokens = usage[out]

    def completion(self, ttfb_s: float | None, total_s: float) -> Completion:
        return Completion("".join(self.text), self.model, self.stop_reason,
                          self.input_tokens, self.output_tokens, ttfb_s, total_s,
                          "".join(self.thinking))


def parse_answer(dialect: str, raw: bytes, requested_model: str) -> Tally:
    """A non-streaming answer body."""
    body = json_object(raw, "the answer")
    tally = Tally(str(body.get("model") or requested_model))
    if dialect == ANTHROPIC:
        for block in body.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text":
                tally.text.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type") == "thinking":
                tally.thinking.append(str(block.get("thinking", "")))
        tally.stop_reason = body.get("stop_reason")
        tally.usage(body.get("usage"), "input_tokens", "output_tokens")
        return tally
    choices = body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    tally.text.append(message.get("content") or "")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str):
        tally.thinking.append(reasoning)
    tally.stop_reason = choices[0].get("finish_reason")
    tally.usage(body.get("usage"), "prompt_tokens", "completion_tokens")
    return tally


# --- streams -----------------------------------------------------------------------------


class StreamReader(Protocol):
    """Feeds on one dialect's SSE events; ``done`` once its end marker arrived."""

    tally: Tally
    done: bool

    def feed(self, event: SSEEvent) -> list[Piece]: ...


class AnthropicStreamReader:
    """``message_start`` … ``content_block_delta`` … ``message_delta``, ``message_stop``."""

    __slots__ = ("done", "tally")

    def __init__(self, model: str) -> None:
        self.tally = Tally(model)
        self.done = False

    def feed(self, event: SSEEvent) -> list[Piece]:
        if event.event == "ping":
            return []
        obj = json_object(event.data.encode(), "a stream event")
        kind = obj.get("type") or event.event
        if kind == "content_block_delta":
            return self._delta(obj.get("delta") or {})
        if kind == "message_start":
            message = obj.get("message") or {}
            self.tally.model = str(message.get("model") or self.tally.model)
            self.tally.usage(message.get("usage"), "input_tokens", "output_tokens")
        elif kind == "message_delta":
            self.tally.stop_reason = (obj.get("delta") or {}).get("stop_reason")
            self.tally.usage(obj.get("usage"), "input_tokens", "output_tokens")
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise error_from_body(None, event.data)
        return []

    def _delta(self, delta: dict[str, Any]) -> list[Piece]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            self.tally.text.append(delta["text"])
            return [("text", delta["text"])]
        if delta.get("type") == "thinking_delta" and delta.get("thinking"):
            self.tally.thinking.append(delta["thinking"])
            return [("thinking", delta["thinking"])]
        return []


class OpenAIStreamReader:
    """``chat.completion.chunk`` data frames, the usage chunk, then ``data: [DONE]``."""

    __slots__ = ("done", "tally")

    def __init__(self, model: str) -> None:
        self.tally = Tally(model)
        self.done = False

    def feed(self, event: SSEEvent) -> list[Piece]:
        if event.data == "[DONE]":
            self.done = True
            return []
        obj = json_object(event.data.encode(), "a stream chunk")
        if "error" in obj:
            raise error_from_body(None, event.data)
        if obj.get("model"):
            self.tally.model = str(obj["model"])
        self.tally.usage(obj.get("usage"), "prompt_tokens", "completion_tokens")
        pieces: list[Piece] = []
        for choice in obj.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.tally.stop_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.tally.thinking.append(reasoning)
                pieces.append(("thinking", reasoning))
            if isinstance(delta.get("content"), str) and delta["content"]:
                self.tally.text.append(delta["content"])
                pieces.append(("text", delta["content"]))
        return pieces


def stream_reader(dialect: str, model: str) -> StreamReader:
    if dialect == ANTHROPIC:
        return AnthropicStreamReader(model)
    return OpenAIStreamReader(model)


def end_marker(dialect: str) -> str:
    return "message_stop" if dialect == ANTHROPIC else "data: [DONE]"
