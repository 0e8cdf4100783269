"""The tool-call sniffer: a model's JSON tool calls, written as text, become ``tool_use`` blocks.

Sans-I/O, an ``EventFilter`` for any backend without native tools (the client's tools are
described to the model by ``proxy.prompt_tools``). It watches text blocks:

* text streams through at once; only a ``{`` or a backtick is held, with what follows it
  until the shape is clear: ``{`` then the first key (it must be ``tool`` or ``calls``,
  checked letter by letter), then for ``tool`` the name (a known tool's, letter by
  letter); a backtick until it is a fence opener (```` ``` ```` or ```` ```json ````
  and a line end) followed by ``{``;
* a candidate that passes is held to its closing brace (strings and escapes tracked), or
  given up at the first character no JSON could hold there; a complete object that parses
  as ``{"tool": _NAME, "args": {...}}`` or ``{"calls": [...]}`` naming only known tools
  becomes one ``tool_use`` block per call, its arguments as one ``ToolArgsDelta``;
* anything else (malformed JSON, an unknown tool, an object the text block abandons) is
  released as text, nothing lost; a call may come anywhere, after lead text or another
  call; whitespace between calls does not open a text block of its own;
* blocks are renumbered, dense and in order; the stop reason becomes ``tool_use`` once a
  call went out; call ids are ``toolu_`` and 24 random characters (the id source is a
  constructor argument, for tests).

The decisions depend only on the characters, never on how they were split into deltas:
any split gives the same blocks and text. Cost per delta when no call is near: one regex
search and one event (``tests/filters/sniffer_cost.py`` measures it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)

_TRIGGER = re.compile(r"[{`]")
_IN_STRING = re.compile(r'["\\]')
# Outside a string: quotes and braces move the scan; any character no JSON value could
# hold there (prose, a backtick) proves the candidate is not JSON.
_OUTSIDE = re.compile(r'["{}]|[^\s\[\],:0-9.eE+\-truefalsn]')
_KEYS = ("tool", "calls")
_ARGS = ("args", "arguments", "input", "parameters")

_NORMAL, _FENCE, _OBJECT, _CLOSING = range(4)  # modes
_OPEN, _KEY, _COLON, _VALUE, _NAME, _BODY = range(6)  # the head of a candidate object


def random_tool_id() -> str:
    return "toolu_" + secrets.token_urlsafe(18)


class ToolSniffer:
    def __init__(self, tool_names: Iterable[str], *,
                 new_id: Callable[[], str] = random_tool_id) -> None:
        self._names = frozenset(tool_names)
        self._prefixes = frozenset(n[:k] for n in self._names for k in range(len(n) + 1))
        self._new_id = new_id
        self._out: list[Event] = []
        self._next = 0  # the next block index we hand out
        self._map: dict[int, int] = {}  # upstream index -> ours, for blocks passed through
        self._watched: int | None = None  # the upstream text block being read
        self._text: int | None = None  # our open text block
        self._pending_ws = ""  # whitespace waiting for a text block to open
        self.calls = 0  # calls emitted so far
        self._reset()

    def _reset(self) -> None:
        self._mode = _NORMAL
        self._held: list[str] = []  # what is held back, raw
        self._prefix = ""  # a fence opener before the object
        self._ticks = 0
        self._phase = 0
        self._info = ""
        self._head = _OPEN
        self._key = ""
        self._word = ""
        self._depth = 0
        self._in_string = False
        self._escaped = False

    # ------------------------------------------------------------------ events

    def feed(self, events: list[Event]) -> list[Event]:
        if not self._names:
            return events
        out: list[Event] = []
        self._out = out
        for event in events:
            if isinstance(event, TextDelta):
                if event.index == self._watched:
                    self._scan(event.text)
                else:
                    out.append(TextDelta(self._map[event.index], event.text))
            elif isinstance(event, BlockStart):
                self._start(event)
            elif isinstance(event, BlockStop):
                self._stop(event.index)
            elif isinstance(event, ThinkingDelta):
                out.append(ThinkingDelta(self._map[event.index], event.text))
            elif isinstance(event, ToolArgsDelta):
                out.append(ToolArgsDelta(self._map[event.index], event.partial_json))
            elif isinstance(event, SignatureDelta):
                out.append(SignatureDelta(self._map[event.index], event.signature))
            elif isinstance(event, MessageDelta) and self.calls:
                out.append(MessageDelta("tool_use", event.usage))
            else:
                out.append(event)
        return out

    def finish(self) -> list[Event]:
        """The upstream stopped short: what is held goes out as text, the block left open
        as the upstream left its own."""
        self._out = []
        if self._watched is not None:
            self._release()
            self._flush_whitespace()
        return self._out

    def _start(self, event: BlockStart) -> None:
        if event.kind == "text":
            self._watched = event.index
            self._reset()
            return
        self._close_text()
        index = self._map[event.index] = self._next
        self._next += 1
        self._out.append(BlockStart(index, event.kind, event.tool_id, event.tool_name))

    def _stop(self, index: int) -> None:
        if index != self._watched:
            self._out.append(BlockStop(self._map.pop(index)))
            return
        self._release()
        self._flush_whitespace()
        self._close_text()
        self._watched = None

    # -------------------------------------------------------------------- text

    def _scan(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            mode = self._mode
            if mode == _NORMAL:
                found = _TRIGGER.search(text, i)
                if found is None:
                    self._emit_text(text[i:] if i else text)
                    return
                j = found.start()
                if j > i:
                    self._emit_text(text[i:j])
                if text[j] == "{":
                    self._begin_object("")
                else:
                    self._mode, self._held, self._ticks, self._phase = _FENCE, ["`"], 1, 0
                    self._info = ""
                i = j + 1
            elif mode == _OBJECT:
                i = self._object(text, i)
            elif mode == _FENCE:
                i = self._fence(text, i)
            else:
                i = self._closing(text, i)

    def _begin_object(self, prefix: str) -> None:
        self._mode, self._prefix, self._held = _OBJECT, prefix, ["{"]
        self._head, self._key, self._word = _OPEN, "", ""
        self._depth, self._in_string, self._escaped = 1, False, False

    def _object(self, text: str, i: int) -> int:
        """Read a candidate from ``text[i:]``; the index to go on from."""
        start = i
        while self._head != _BODY and i < len(text):
            if not self._head_step(text[i]):
                self._held.append(text[start:i])
                self._release()
                return i  # the character that decided is read again, as text
            i += 1
        if self._head == _BODY:
            end = self._body(text, i)
            if end < 0:
                i = len(text)
            elif text[end - 1] != "}":  # a character no JSON holds there
                self._held.append(text[start:end - 1])
                self._release()
                return end - 1
            else:
                self._held.append(text[start:end])
                self._complete()
                return end
        self._held.append(text[start:i])
        return i

    def _head_step(self, c: str) -> bool:
        """One character of ``{"tool": "NAME"`` or ``{"calls": [``; False rejects."""
        head = self._head
        if head in (_OPEN, _COLON, _VALUE) and c.isspace():
            return True
        if head == _OPEN:
            self._head, self._in_string = _KEY, True
            return c == '"'
        if head in (_KEY, _NAME):
            if c == "\\":  # an escape: only the whole object can tell
                self._head, self._escaped = _BODY, True
                return True
            if c == '"':
                self._in_string = False
                if head == _KEY:
                    self._head, self._key, self._word = _COLON, self._word, ""
                    return self._key in _KEYS
                self._head = _BODY
                return self._word in self._names
            self._word += c
            if head == _KEY:
                return any(k.startswith(self._word) for k in _KEYS)
            return self._word in self._prefixes
        if head == _COLON:
            self._head = _VALUE
            return c == ":"
        if self._key == "tool":  # _VALUE: the name's opening quote
            self._head, self._in_string = _NAME, True
            return c == '"'
        self._head = _BODY  # _VALUE of "calls": the list, read as a whole
        return c == "["

    def _body(self, text: str, i: int) -> int:
        """The index just past the closing brace, or past a character that rules JSON out
        (the caller tells them apart), or -1 when ``text`` ran out first."""
        n = len(text)
        while i < n:
            if self._escaped:
                self._escaped = False
                i += 1
            elif self._in_string:
                found = _IN_STRING.search(text, i)
                if found is None:
                    return -1
                i = found.end()
                if text[i - 1] == "\\":
                    self._escaped = True
                else:
                    self._in_string = False
            else:
                found = _OUTSIDE.search(text, i)
                if found is None:
                    return -1
                i = found.end()
                c = text[i - 1]
                if c == '"':
                    self._in_string = True
                elif c == "{":
                    self._depth += 1
                elif c == "}":
                    self._depth -= 1
                    if self._depth == 0:
                        return i
                else:
                    return i
        return -1

    def _complete(self) -> None:
        calls = self._calls_in("".join(self._held))
        if calls is None:
            self._release()
            return
        fenced = bool(self._prefix)
        self._reset()
        self._emit_calls(calls)
        if fenced:
            self._mode, self._ticks = _CLOSING, 0

    def _calls_in(self, raw: str) -> list[tuple[str, dict[str, Any]]] | None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        items = [value] if "tool" in value else value.get("calls")
        if not isinstance(items, list) or not items:
            return None
        calls = []
        for item in items:
            call = self._call(item)
            if call is None:
                return None
            calls.append(call)
        return calls

    def _call(self, item: Any) -> tuple[str, dict[str, Any]] | None:
        if not isinstance(item, dict):
            return None
        name = item.get("tool", item.get("name"))
        if name not in self._names:
            return None
        args: Any = next((item[k] for k in _ARGS if k in item), {})
        if isinstance(args, str):
            try:
                args = orjson.loads(args) if args.strip() else {}
            except orjson.JSONDecodeError:
                return None
        return (name, args) if isinstance(args, dict) else None

    def _fence(self, text: str, i: int) -> int:
        """Read a possible fence opener; on ``{`` the object inside begins."""
        start = i
        while i < len(text):
            verdict = self._fence_step(text[i])
            if verdict is None:
                self._begin_object("".join(self._held) + text[start:i])
                return i + 1
            if not verdict:
                self._held.append(text[start:i])
                self._release()
                return i
            i += 1
        self._held.append(text[start:])
        return i

    def _fence_step(self, c: str) -> bool | None:
        """True: still an opener; False: not one; None: the opener is done at ``{``."""
        phase = self._phase
        if phase == 0:  # the backticks
            self._ticks += 1
            self._phase = 1 if self._ticks == 3 else 0
            return c == "`"
        if c == "{":
            return None if self._info in ("", "json") else False
        if phase == 1 and c.isascii() and c.isalpha():  # the info string
            self._info += c.lower()
            return "json".startswith(self._info)
        if phase < 3 and c in " \t":
            self._phase = 2
            return self._info in ("", "json")
        if c in "\r\n" or (phase == 3 and c.isspace()):
            self._phase = 3
            return self._info in ("", "json")
        return False

    def _closing(self, text: str, i: int) -> int:
        """After a fenced call: its closing fence is dropped with the call."""
        while i < len(text):
            c = text[i]
            if c == "`":
                self._ticks += 1
                self._held.append(c)
                if self._ticks == 3:
                    self._reset()
                    return i + 1
            elif c.isspace() and not self._ticks:
                self._held.append(c)
            else:
                self._release()
                return i
            i += 1
        return i

    # ------------------------------------------------------------------ output

    def _release(self) -> None:
        """Whatever is held goes out as text."""
        held = self._prefix + "".join(self._held)
        self._reset()
        if held:
            self._emit_text(held)

    def _emit_text(self, text: str) -> None:
        index = self._text
        if index is None:
            if text.isspace():
                self._pending_ws += text
                return
            text, self._pending_ws = self._pending_ws + text, ""
            index = self._open_text()
        self._out.append(TextDelta(index, text))

    def _flush_whitespace(self) -> None:
        """Whitespace left over: kept when the reply has no call, dropped after one."""
        if self._pending_ws and not self.calls:
            self._out.append(TextDelta(self._open_text(), self._pending_ws))
        self._pending_ws = ""

    def _open_text(self) -> int:
        index = self._text = self._next
        self._next += 1
        self._out.append(BlockStart(index, "text"))
        return index

    def _close_text(self) -> None:
        if self._text is not None:
            self._out.append(BlockStop(self._text))
            self._text = None

    def _emit_calls(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self._close_text()
        self._pending_ws = ""
        for name, args in calls:
            index = self._next
            self._next += 1
            self._out += [BlockStart(index, "tool_use", self._new_id(), name),
                          ToolArgsDelta(index, orjson.dumps(args).decode()), BlockStop(index)]
        self.calls += len(calls)
