"""What every upstream stream decoder shares: the frames of one read in (an SSE event's
data, an NDJSON line), the events they completed out, and a failure held back until the
events before it have been handed over.

Sans-I/O. A subclass says how one frame's data becomes events (``_take_frame``); this
base turns a frame that is not JSON, or not the shape the dialect promises, into an
``UpstreamProtocolError`` (never a proxy crash), and keeps the order that matters: the
text before a failure is still the client's, then the failure.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from proxy.canonical import Event
from proxy.errors import UpstreamError, UpstreamProtocolError

Frame = str | bytes  # an SSE event's data (bytes, from sse.frames) or an NDJSON line
DONE = ("[DONE]", b"[DONE]")  # OpenAI's last frame, as text or as bytes

_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


class StreamDecoder:
    def __init__(self) -> None:
        self.done = False
        self._out: list[Event] = []
        self._error: UpstreamError | None = None

    @property
    def failed(self) -> bool:
        """A failure came (an error frame, a broken one); ``finish()`` raises it."""
        return self._error is not None

    @property
    def finishing(self) -> bool:
        """The upstream said it finished; only its last frames may still come (the read
        loop then waits a short grace for them, no longer)."""
        return False

    def feed(self, frames: Sequence[Frame]) -> list[Event]:
        self._raise_held()
        try:
            for data in frames:
                if self.done:
                    break
                try:  # no context manager here: this runs once per frame
                    self._take_frame(data)
                except MALFORMED:
                    raise UpstreamProtocolError("The upstream sent a malformed stream frame: "
                                                f"{data[:200]!r}") from None
        except UpstreamError as exc:
            if not self._out:
                raise
            self._error = exc  # what came before the failure is still the client's
        return self._take_out()

    def _take_frame(self, data: Frame) -> None:
        raise NotImplementedError

    def _raise_held(self) -> None:
        if self._error is not None:
            raise self._error

    def _take_out(self) -> list[Event]:
        out, self._out = self._out, []
        return out


# What a field of the wrong type does to a decoder ("x".get, 5 + "a", a missing key, a
# list as a dict key): the upstream's fault, a protocol error, never a proxy crash.
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError)
MAX_TOKEN_COUNT = 2**53 - 1  # what every JSON reader takes as an exact integer


def token_count(value: Any) -> int | None:
    """A usage count as the upstream sent it, if it is one: a whole number from 0 up. A
    count that is not (null, a string, -1, 1e30) is no count at all."""
    if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


def object_field(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A field that must be an object when present (absent or null: empty). The wrong
    type raises TypeError, which ``malformed`` makes a protocol error."""
    value = data.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise TypeError(key)
    return value


def list_field(data: dict[str, Any], key: str) -> list[Any]:
    """A field that must be an array when present (absent or null: empty)."""
    value = data.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise TypeError(key)
    return value


def text_field(data: dict[str, Any], key: str) -> str:
    """A field that must be a string when present (absent or null: empty)."""
    value = data.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise TypeError(key)
    return value


@contextlib.contextmanager
def malformed(what: str) -> Iterator[None]:
    """For a whole upstream body: a field of the wrong type is a protocol error."""
    try:
        yield
    except MALFORMED:
        raise UpstreamProtocolError(f"The upstream sent a malformed {what}.") from None


def parse_frame(data: Frame) -> dict[str, Any]:
    """One frame's JSON object, or an UpstreamProtocolError that quotes it."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        frame = _parse_with_lone_surrogates(text)
    if type(frame) is not dict:
        raise UpstreamProtocolError("The upstream sent a stream frame that is not an object.")
    return frame


def _parse_with_lone_surrogates(data: str) -> Any:
    """Some servers cut an emoji's surrogate pair across two chunks ("\\ud83d" then
    "\\ude00"); each half alone is not JSON to orjson. Such halves become U+FFFD; so do
    bytes that are not UTF-8 (decoded with replacement before this); anything else that
    does not parse is a protocol error."""
    mended = _LONE_SURROGATE.sub(r"\\ufffd", data)
    try:
        return orjson.loads(mended)
    except orjson.JSONDecodeError:
        pass
    raise UpstreamProtocolError(
        f"The upstream sent a stream frame that is not JSON: {data[:200]!r}") from None
