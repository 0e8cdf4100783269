"""Newline-delimited JSON on the wire: bytes in, complete lines out.

Sans-I/O (stdlib only); the framing of a child's stdout (the Claude Code CLI's stream-json),
as ``proxy.sse`` is the framing of an HTTP body. Both offer ``frames(chunk)`` (text lines
here, bytes there) and ``truncated``, so one read loop drives either. The rules:

* lines end in LF, and they are split in the *bytes*, before any UTF-8 decoding: a
  multi-byte character cut across two reads is whole again when its line is, and no
  UTF-8 sequence contains the LF byte, so a split can never land inside a character;
* a CR before the LF is dropped (CRLF tolerated); a lone CR is data (JSON never has one
  outside a string, where it is escaped);
* empty and blank lines are skipped;
* one line may not grow past ``max_line_bytes``: a child that never ends its line must
  not eat the proxy's memory, so that is an ``UpstreamProtocolError``;
* a line still open when the stream ends is *not* returned: ``truncated`` says so, and
  the caller decides whether that is an error.
"""

from __future__ import annotations

from proxy.errors import UpstreamProtocolError

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024


class NDJSONDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the lines completed by that chunk."""

    __slots__ = ("_held", "_held_bytes", "_max_line")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max_line = max_line_bytes
        self._held: list[bytes] = []  # the open line, in the pieces it came in
        self._held_bytes = 0

    def feed(self, chunk: bytes) -> list[str]:
        if b"\n" not in chunk:
            # Nothing can complete before a line ends: hold the read, so a line of many
            # megabytes in small reads costs linear time, not quadratic.
            if chunk:
                self._hold(chunk)
            return []
        if self._held:
            self._held.append(chunk)
            chunk = b"".join(self._held)
            self._held, self._held_bytes = [], 0
        lines = chunk.split(b"\n")
        tail = lines.pop()
        out: list[str] = []
        for line in lines:
            if len(line) > self._max_line:
                raise self._too_long()
            if line[-1:] == b"\r":
                line = line[:-1]
            if line and not line.isspace():
                out.append(line.decode("utf-8", "replace"))
        if tail:
            self._hold(tail)
        return out

    frames = feed  # the name the read loop calls on every framing (see proxy.sse)

    @property
    def truncated(self) -> bool:
        """True when the stream, were it to end now, would end inside a line."""
        return any(not piece.isspace() for piece in self._held)

    def _hold(self, piece: bytes) -> None:
        self._held.append(piece)
        self._held_bytes += len(piece)
        if self._held_bytes > self._max_line:
            raise self._too_long()

    def _too_long(self) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"The upstream sent a line longer than {self._max_line} bytes.")
