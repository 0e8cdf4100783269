"""Server-sent events on the wire: bytes in, events out, and back.

Sans-I/O (stdlib only). The decoder follows the WHATWG event-stream rules:

* lines end in CR, LF or CRLF, and they are split in the *bytes*, before any UTF-8
  decoding, so a U+2028 inside a JSON string is not a line break;
* a CRLF may arrive split across two reads (the CR now, the LF in the next chunk);
* several ``data:`` lines join with "\\n"; ``:`` lines are comments; an empty line
  dispatches; an event with no data is not dispatched;
* a frame still open when the stream ends is *not* dispatched: ``truncated`` says so, and
  the caller decides whether that is an error (it is for every upstream we speak to);
* a frame may not grow past ``max_frame`` bytes (MAX_FRAME_BYTES): an upstream that sends
  hundreds of megabytes without a line end fails its stream instead of filling memory.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from proxy.errors import UpstreamProtocolError

DEFAULT_MAX_FRAME = 16 * 1024 * 1024


class SSEEvent(NamedTuple):
    event: str | None
    data: str


_new_event = tuple.__new__  # a NamedTuple without its Python-level __new__: hot path


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the events completed by that chunk."""

    __slots__ = ("_data", "_data_size", "_event", "_held", "_held_size", "_max", "_partial",
                 "_skip_lf", "_started")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._max = max_frame
        self._partial = b""
        self._held: list[bytes] = []  # reads with no line end: the middle of a long line
        self._held_size = 0
        self._data_size = 0  # the data lines of the open frame, so far
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = self._feed(chunk, False)
        return events

    def frames(self, chunk: bytes) -> list[bytes]:
        """The data of the events ``chunk`` completed, as bytes: what an upstream stream
        decoder takes (every dialect we read carries its event type inside the data, and
        orjson reads bytes). On the common LF-only stream these are slices of the read,
        with no decoding and no event tuple in between: the hot path."""
        data: list[bytes] = self._feed(chunk, True)
        return data

    def _feed(self, chunk: bytes, data_only: bool) -> list[Any]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        if not self._started:
            chunk = self._strip_bom(chunk)
        elif b"\n" not in chunk and b"\r" not in chunk:
            # Nothing can complete before a line ends: hold the read, so a frame of many
            # megabytes in small reads costs linear time, not quadratic.
            self._held.append(chunk)
            self._held_size += len(chunk)
            self._check_size(self._held_size + len(self._partial))
            return []
        if self._held:
            chunk = b"".join(self._held) + chunk
            self._held.clear()
            self._held_size = 0
        buf = self._partial + chunk if self._partial else chunk
        if b"\r" not in buf and not self._data and self._event is None:
            return self._feed_lf_frames(buf, data_only)
        lines = buf.splitlines(keepends=True)
        last = lines[-1] if lines else b""
        if last and last[-1:] not in (b"\n", b"\r"):
            self._partial = lines.pop()
            self._check_size(len(self._partial) + self._data_size)
        else:
            self._partial = b""
            # A bare CR at the end may be the first half of a CRLF split across reads.
            self._skip_lf = last[-1:] == b"\r"
        events: list[SSEEvent] = []
        for line in lines:
            self._take_line(line.rstrip(b"\r\n"), events)
        return [e.data.encode() for e in events] if data_only else events

    def _feed_lf_frames(self, buf: bytes, data_only: bool) -> list[Any]:
        """The fast path for the common LF-only stream: split whole frames at once and
        keep the unfinished tail raw, since nothing in it can dispatch yet."""
        frames = buf.split(b"\n\n")
        partial = self._partial = frames.pop()
        self._check_size(len(partial))
        # Two LFs a frame means every frame is a single line; if each is a data line, the
        # events are those lines (the usual OpenAI stream), built without a per-line loop.
        lines = buf.count(b"\n") - partial.count(b"\n")
        if lines == 2 * len(frames):
            raw = [f[6:] for f in frames if f[:6] == b"data: "]
            if len(raw) == len(frames):
                if data_only:
                    return raw
                return [_new_event(SSEEvent, (None, d.decode("utf-8", "replace"))) for d in raw]
        elif lines == 3 * len(frames):  # "event: …" then "data: …" (the Anthropic habit)
            pairs = [f.partition(b"\n")[::2] for f in frames]
            if all(e.startswith(b"event: ") and d.startswith(b"data: ") and b"\n" not in d
                   for e, d in pairs):
                if data_only:
                    return [d[6:] for _, d in pairs]
                return [_new_event(SSEEvent, (e[7:].decode("utf-8", "replace"),
                                              d[6:].decode("utf-8", "replace")))
                        for e, d in pairs]
        events: list[SSEEvent] = []
        for frame in frames:
            if frame:
                for line in frame.split(b"\n"):
                    self._take_line(line, events)
                self._take_line(b"", events)
        return [e.data.encode() for e in events] if data_only else events

    def _check_size(self, size: int) -> None:
        if size > self._max:
            raise UpstreamProtocolError(f"The upstream sent a stream frame of more than "
                                        f"{self._max} bytes (MAX_FRAME_BYTES).")

    @property
    def truncated(self) -> bool:
        """True when the stream, were it to end now, would end inside a frame."""
        return bool(self._partial or self._held or self._data or self._event is not None)

    def _strip_bom(self, chunk: bytes) -> bytes:
        whole = self._partial + chunk
        if len(whole) < 3 and b"\xef\xbb\xbf".startswith(whole):
            return chunk  # too short to tell yet
        self._started = True
        if whole.startswith(b"\xef\xbb\xbf"):
            self._partial = b""
            return whole[3:]
        return chunk

    def _take_line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(self._event, "\n".join(self._data)))
            self._data = []
            self._data_size = 0
            self._event = None
            return
        if line[0] == 0x3A:  # ":" starts a comment (keep-alives)
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_size += len(value)
            self._check_size(self._data_size)
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" mean nothing to a proxy that never reconnects; unknown fields
        # are ignored, as the spec says.


def encode_event(name: bytes, data: bytes) -> bytes:
    """One SSE frame with an ``event:`` line (the Anthropic habit)."""
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def encode_data(data: bytes) -> bytes:
    """One data-only SSE frame (the OpenAI habit)."""
    return b"data: " + data + b"\n\n"
