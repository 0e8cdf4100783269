"""Whether a JSON object arriving in fragments may be complete, in time linear in its size.

Sans-I/O. A stream decoder that must hold one tool call back until another is finished
asks after every fragment whether the arguments so far are a whole object. Parsing all of
them each time is quadratic (400 KB of arguments in small fragments took seconds); this
keeps a running count instead: nesting depth, inside a string or not, a pending escape,
looking only at the characters that can change them. The object can only be complete
where the depth first comes back to 0, so that is the one place a real parse confirms it.
"""

from __future__ import annotations

import re

import orjson

_SIGNIFICANT = re.compile(r'[{}\[\]"\\]')


class ObjectProgress:
    """Feed the fragments of one JSON text in order; ``complete`` says whether the text so
    far is exactly one JSON object (with white space around it at most)."""

    __slots__ = ("_broken", "_depth", "_escaped", "_in_string", "_opened", "_parts",
                 "_whole", "complete")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._opened = False  # the first "{" came
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the next character (in the next fragment) is escaped
        self._whole = False  # the depth came back to 0: the object closed
        self._broken = False  # no continuation can make this one object
        self.complete = False

    def feed(self, fragment: str) -> None:
        if not fragment:
            return  # nothing changes (a pending escape still waits for its character)
        self._parts.append(fragment)
        if self._broken:
            return
        if self._whole:
            if fragment.strip():  # after the closing brace only white space may follow
                self._broken, self.complete = True, False
            return
        if not self._opened:
            head = fragment.lstrip()[:1]
            if not head:
                return
            if head != "{":
                self._broken = True  # not an object at all
                return
            self._opened = True
        self._scan(fragment)

    def _scan(self, fragment: str) -> None:
        skip = 1 if self._escaped else 0  # a fragment may open with an escaped character
        self._escaped = False
        for match in _SIGNIFICANT.finditer(fragment, skip):
            at = match.start()
            if at < skip:
                continue
            char = fragment[at]
            if self._in_string:
                if char == "\\":
                    skip = at + 2
                    self._escaped = skip > len(fragment)
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._close()
                    return

    def _close(self) -> None:
        """The depth came back to 0: the one place the object may be whole (anything after
        it in the same fragment makes the parse fail, as it should)."""
        self._whole = True
        try:
            self.complete = isinstance(orjson.loads("".join(self._parts)), dict)
        except orjson.JSONDecodeError:
            self.complete = False
        self._broken = not self.complete
