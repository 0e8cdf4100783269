"""The hot path of a stream decoder: a text frame shaped exactly like the last one.

Sans-I/O. Nearly every frame of a long answer is the same bytes but for one JSON string,
its text (OpenAI: ``…"delta":{"content":"…"},"logprobs":null,"finish_reason":null}]}``).
Once a frame has been parsed whole and found to be only more text, its bytes before and
after that string are remembered; a later frame with the very same bytes around one
JSON string is the same object with other text, so the string alone is parsed (a few
hundred nanoseconds) instead of the whole frame and its fields. Anything else, or a
frame that does not match to the byte, takes the decoder's general path: correctness
never rests on the shape, only the speed does.
"""

from __future__ import annotations

import orjson


class TextShape:
    __slots__ = ("_prefix", "_suffix", "_trim")

    def __init__(self) -> None:
        self._prefix = b""
        self._suffix = b""
        self._trim = 0  # len(prefix) + len(suffix): none learned while it is 0

    @property
    def learned(self) -> bool:
        return bool(self._trim)

    def forget(self) -> None:
        """The block the shape belongs to ended: its frames are no longer text of ours."""
        self._prefix = self._suffix = b""
        self._trim = 0

    def text(self, frame: bytes) -> str | None:
        """The text of ``frame`` if it has the learned shape; None if it has not."""
        if not self._trim or len(frame) <= self._trim or not frame.startswith(self._prefix) \
                or not frame.endswith(self._suffix):
            return None
        literal = frame[len(self._prefix):len(frame) - len(self._suffix)]
        if literal[:1] != b'"' or literal[-1:] != b'"':
            return None
        try:
            value = orjson.loads(literal)
        except orjson.JSONDecodeError:  # e.g. '"a","other":"b"': more than one string
            return None
        return value if type(value) is str else None

    def learn(self, frame: bytes, marker: bytes, text: object) -> None:
        """Remember the shape of ``frame``, parsed whole and found to be only ``text``, the
        JSON string that follows ``marker`` (e.g. ``b'"content":'``)."""
        at = frame.find(marker)
        if at < 0:
            return
        start = at + len(marker)
        end = _string_end(frame, start)
        if end < 0:
            return
        try:
            if type(text) is not str or orjson.loads(frame[start:end]) != text:
                return  # the marker was another field's: no shape to learn
        except orjson.JSONDecodeError:
            return
        self._prefix, self._suffix = frame[:start], frame[end:]
        self._trim = len(self._prefix) + len(self._suffix)


def _string_end(data: bytes, start: int) -> int:
    """The index just past the JSON string that starts at ``start``; -1 if none does."""
    if data[start:start + 1] != b'"':
        return -1
    at = start + 1
    while True:
        at = data.find(b'"', at)
        if at < 0:
            return -1
        backslashes = 0
        while data[at - 1 - backslashes] == 0x5C:  # an escaped quote does not end it
            backslashes += 1
        if backslashes % 2 == 0:
            return at + 1
        at += 1
