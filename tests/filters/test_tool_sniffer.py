"""The tool-call sniffer: JSON calls in a model's text become tool_use blocks, everything else
stays text, nothing is held longer than needed, and any split of the text gives the same
blocks (fed whole, character by character, and in random splits and batches)."""

from __future__ import annotations

import itertools
import random
import re
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    BlockStop,
    Collector,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
    coalesce,
)
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.openai import stream_encode
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder
from proxy.filters import EventFilter
from proxy.filters.tool_sniffer import ToolSniffer, random_tool_id
from tests.support import check_anthropic_stream, check_openai_stream, parse_anthropic_sse

NAMES = ("Read", "Bash", "Glob", "Write", "mcp__tracker__query")
USAGE = Usage(input_tokens=10, output_tokens=5)


def sniffer(names: tuple[str, ...] = NAMES) -> ToolSniffer:
    counter = itertools.count(1)
    return ToolSniffer(names, new_id=lambda: f"toolu_test{next(counter)}")


def text_splits(text: str, seeds: int = 6) -> list[list[str]]:
    """Whole, one character at a time, and random pieces."""
    ways = [[text], list(text)]
    for seed in range(seeds):
        rng = random.Random(seed)
        if len(text) < 2:
            break
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 30))))
        ways.append([text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])
    return ways


def stream(pieces: list[str], *, stop: str = "end_turn") -> list[Event]:
    return [MessageStart("msg_1", "m", Usage(input_tokens=10)), BlockStart(0, "text"),
            *[TextDelta(0, p) for p in pieces if p], BlockStop(0),
            MessageDelta(stop, USAGE), MessageStop()]


def run(pieces: list[str], names: tuple[str, ...] = NAMES, *, batch: int = 1,
        events: list[Event] | None = None) -> list[Event]:
    """Feed the events ``batch`` at a time; the output with adjacent deltas joined."""
    events = events if events is not None else stream(pieces)
    filt = sniffer(names)
    out: list[Event] = []
    for i in range(0, len(events), batch):
        out += filt.feed(events[i:i + batch])
    return coalesce(out)


def blocks(events: list[Event]) -> list[tuple[Any, ...]]:
    """("text", text) and ("tool", name, args) per block, via the canonical collector."""
    collector = Collector()
    collector.feed(events)
    return [("text", b.text) if b.kind == "text" else
            ("tool", b.tool_name, b.tool_input) if b.kind == "tool_use" else ("thinking", b.text)
            for b in collector.message.blocks]


def stop_reason(events: list[Event]) -> str:
    (delta,) = [e for e in events if isinstance(e, MessageDelta)]
    return delta.stop_reason


def every_split(text: str, names: tuple[str, ...] = NAMES) -> list[Event]:
    """The output for ``text``, checked identical across splits and batch sizes."""
    first = run([text], names)
    for pieces in text_splits(text):
        for batch in (1, 3, 1000):
            assert run(pieces, names, batch=batch) == first, (pieces, batch)
    return first


def test_the_sniffer_is_an_event_filter() -> None:
    filt: EventFilter = sniffer()
    assert filt.feed([]) == [] and filt.finish() == []


# ------------------------------------------------------------------ what becomes a call


def test_a_bare_call_becomes_one_tool_use_block() -> None:
    out = every_split('{"tool": "Read", "args": {"file_path": "/etc/hosts"}}')
    assert blocks(out) == [("tool", "Read", {"file_path": "/etc/hosts"})]
    assert stop_reason(out) == "tool_use"
    start = next(e for e in out if isinstance(e, BlockStart))
    assert start == BlockStart(0, "tool_use", "toolu_test1", "Read")


def test_lead_text_then_a_call() -> None:
    out = every_split('Let me look.\n\n{"tool": "Bash", "args": {"command": "ls -la"}}')
    assert blocks(out) == [("text", "Let me look.\n\n"), ("tool", "Bash", {"command": "ls -la"})]
    assert [e.index for e in out if isinstance(e, BlockStart)] == [0, 1]
    assert stop_reason(out) == "tool_use"


@pytest.mark.parametrize("opener", ["```json\n", "```\n", "```JSON\n", "```json  \n  ", "```json"])
def test_a_call_in_a_fence(opener: str) -> None:
    out = every_split(f'Reading it now.\n{opener}{{"tool": "Read", "args": {{"file_path": "a"}}}}'
                      "\n```\n")
    assert blocks(out) == [("text", "Reading it now.\n"), ("tool", "Read", {"file_path": "a"})]


def test_two_calls_in_the_calls_form() -> None:
    text = ('{"calls": [{"tool": "Bash", "args": {"command": "wc -l *.py"}},'
            ' {"tool": "Glob", "args": {"pattern": "docs/**"}}]}')
    out = every_split(text)
    assert blocks(out) == [("tool", "Bash", {"command": "wc -l *.py"}),
                           ("tool", "Glob", {"pattern": "docs/**"})]
    ids = [e.tool_id for e in out if isinstance(e, BlockStart)]
    assert len(set(ids)) == 2


def test_two_json_objects_in_one_reply_are_two_calls() -> None:
    text = ('{"tool": "Read", "args": {"file_path": "a"}}\n'
            '{"tool": "Read", "args": {"file_path": "b"}}\n')
    out = every_split(text)
    assert blocks(out) == [("tool", "Read", {"file_path": "a"}),
                           ("tool", "Read", {"file_path": "b"})]


def test_prose_with_braces_keeps_every_character_and_the_call() -> None:
    prose = ("A set is written {1, 2}; a dict is {'a': 1} or {\"name\": \"x\"}; "
             "`{}` is empty and ```python\nx = {}\n``` is code. ")
    out = every_split(prose + '{"tool": "Glob", "args": {"pattern": "*.py"}}')
    assert blocks(out) == [("text", prose), ("tool", "Glob", {"pattern": "*.py"})]


def test_text_after_a_call_opens_a_new_text_block() -> None:
    out = every_split('{"tool": "Read", "args": {"file_path": "a"}}\n\nThen I will summarise.')
    assert blocks(out) == [("tool", "Read", {"file_path": "a"}),
                           ("text", "\n\nThen I will summarise.")]
    assert stop_reason(out) == "tool_use"


def test_strings_with_braces_quotes_and_escapes_inside_arguments() -> None:
    command = 'echo "}" {"tool": x} \\ done\n'
    text = orjson.dumps({"tool": "Bash", "args": {"command": command}}).decode()
    assert blocks(every_split(text)) == [("tool", "Bash", {"command": command})]


def test_non_ascii_and_nested_arguments() -> None:
    args = {"file_path": "/tmp/é😀.md", "content": "ü {x}", "edits": [{"a": [1, 2.5e3, None]}],
            "flag": True}
    text = "Écrivons. " + orjson.dumps({"tool": "Write", "args": args}).decode()
    assert blocks(every_split(text)) == [("text", "Écrivons. "), ("tool", "Write", args)]


def test_arguments_given_as_a_json_string_or_left_out() -> None:
    out = every_split('{"tool": "Read", "args": "{\\"file_path\\": \\"a\\"}"}'
                      '{"tool": "Bash"}')
    assert blocks(out) == [("tool", "Read", {"file_path": "a"}), ("tool", "Bash", {})]


def test_long_tool_names() -> None:
    out = every_split('{"tool": "mcp__tracker__query", "args": {"filter": "open"}}')
    assert blocks(out) == [("tool", "mcp__tracker__query", {"filter": "open"})]


# ------------------------------------------------------------------ what stays text


@pytest.mark.parametrize("text", [
    '{"tool": "Delete", "args": {"path": "/"}}',  # no such tool
    '{"tool": "Read", "args": {"file_path": "a",}}',  # malformed (trailing comma)
    '{"tool": "Read", "args": ["a"]}',  # arguments not an object
    '{"calls": []}',
    '{"calls": [{"tool": "Read", "args": {}}, {"tool": "Nope", "args": {}}]}',
    '{"calls": [{"tool": "Read", "args": {}}, "x"]}',
    '{"name": "Read", "arguments": {"file_path": "a"}}',  # not our format
    '{"tool": "Read", "args": {"file_path": "a"}',  # abandoned: never closed
    '{"tool": "Read", "args": {"file_path": "a"} and then prose',
    '```json\n{"tool": "Read", "args": {"file_path": "a"}',
    "```json\nnot json\n```",
    "```python\nprint({'a': 1})\n```",
    "Use `ls` and ``code`` and ````four````.",
    "{", "`", "``", "```", "```json\n", '{"to', '{"tool": "Re',
    '{"tool" "Read"}', '{"tool": ["Read"]}', "{{{}}}", '{"calls": {"x": 1}}',
])
def test_anything_that_is_not_a_call_is_text_with_nothing_lost(text: str) -> None:
    out = every_split(text)
    assert blocks(out) == [("text", text)]
    assert stop_reason(out) == "end_turn"


def test_whitespace_alone_is_kept_without_a_call_and_dropped_after_one() -> None:
    assert blocks(every_split("  \n")) == [("text", "  \n")]
    out = every_split('\n  {"tool": "Read", "args": {}}  \n\n')
    assert blocks(out) == [("tool", "Read", {})]


def test_no_known_tools_passes_everything_through_untouched() -> None:
    events = stream(['{"tool": "Read", "args": {}}'])
    assert ToolSniffer(()).feed(events) is events


# ------------------------------------------------------------------ holding back


def feed_pieces(pieces: list[str]) -> list[list[Event]]:
    """What comes out after each piece."""
    filt = sniffer()
    outs = [filt.feed([MessageStart("m", "m", Usage()), BlockStart(0, "text")])]
    outs += [filt.feed([TextDelta(0, piece)]) for piece in pieces]
    return outs


def texts(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_plain_text_streams_at_once() -> None:
    outs = feed_pieces(["Hello", ", world", ". No braces here."])
    assert [texts(o) for o in outs[1:]] == ["Hello", ", world", ". No braces here."]


def test_the_lead_text_goes_out_before_the_call_is_complete() -> None:
    outs = feed_pieces(["I'll read the file. ", '{"tool": "Re', 'ad", "args": {"file_', 'path": "a"}',
                        "}"])
    assert texts(outs[1]) == "I'll read the file. "
    assert [texts(o) for o in outs[2:]] == ["", "", "", ""]
    assert any(isinstance(e, BlockStart) and e.kind == "tool_use" for e in outs[5])


@pytest.mark.parametrize(("pieces", "released"), [
    (["a {", "x"], ["a ", "{x"]),  # a brace then a letter: not JSON
    (["{", '"', "n"], ["", "", '{"n']),  # a first key that is not tool or calls
    (['{"too', "ls"], ["", '{"tools']),
    (['{"tool": "R', "x"], ["", '{"tool": "Rx']),  # no known tool starts with Rx
    (["`", "l"], ["", "`l"]),
    (["```", "p"], ["", "```p"]),
    (["```js", "x"], ["", "```jsx"]),
    (['{"tool": "Read", "args": {"a": 1} ', "N"], ["", '{"tool": "Read", "args": {"a": 1} N']),
])
def test_held_only_until_the_shape_is_clear(pieces: list[str], released: list[str]) -> None:
    outs = feed_pieces(pieces)
    assert [texts(o) for o in outs[1:]] == released


def test_a_candidate_cut_by_the_stream_end_is_released_by_finish() -> None:
    filt = sniffer()
    first = filt.feed([MessageStart("m", "m", Usage()), BlockStart(0, "text"),
                       TextDelta(0, 'Sure: {"tool": "Read", "args": {"fi')])
    rest = filt.finish()
    assert texts(first) == "Sure: "
    assert rest == [TextDelta(0, '{"tool": "Read", "args": {"fi')]


def test_finish_opens_a_text_block_when_none_is_open() -> None:
    filt = sniffer()
    filt.feed([MessageStart("m", "m", Usage()), BlockStart(0, "text"), TextDelta(0, "{")])
    assert filt.finish() == [BlockStart(0, "text"), TextDelta(0, "{")]


# ------------------------------------------------------------------ other blocks, grammar


def test_thinking_and_native_tool_blocks_pass_through_renumbered() -> None:
    events: list[Event] = [
        MessageStart("m", "m", Usage()),
        BlockStart(0, "thinking"), ThinkingDelta(0, "hmm"), SignatureDelta(0, "sig"), BlockStop(0),
        BlockStart(1, "text"), TextDelta(1, 'Lead. {"tool": "Read", "args": {}}'), BlockStop(1),
        BlockStart(2, "tool_use", "toolu_native", "Bash"), ToolArgsDelta(2, '{"command":"ls"}'),
        BlockStop(2),
        BlockStart(3, "text"), TextDelta(3, "Done."), BlockStop(3),
        MessageDelta("tool_use", USAGE), MessageStop()]
    out = run([], events=events, batch=2)
    starts = [(e.index, e.kind, e.tool_name) for e in out if isinstance(e, BlockStart)]
    assert starts == [(0, "thinking", ""), (1, "text", ""), (2, "tool_use", "Read"),
                      (3, "tool_use", "Bash"), (4, "text", "")]
    assert SignatureDelta(0, "sig") in out and ToolArgsDelta(3, '{"command":"ls"}') in out
    assert blocks(out) == [("thinking", "hmm"), ("text", "Lead. "), ("tool", "Read", {}),
                           ("tool", "Bash", {"command": "ls"}), ("text", "Done.")]


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_encode, "time", SimpleNamespace(time=lambda: 1_741_570_283.0))


@pytest.mark.parametrize("text", [
    'Lead text. ```json\n{"calls": [{"tool": "Read", "args": {"file_path": "a"}}, '
    '{"tool": "Bash", "args": {"command": "ls"}}]}\n``` and after.',
    "Only prose {with braces}.",
    '{"tool": "Glob", "args": {"pattern": "*"}}',
])
def test_the_output_is_a_valid_stream_in_both_client_dialects(text: str, frozen_clock: None
                                                               ) -> None:
    for pieces in text_splits(text, seeds=3):
        filt = sniffer()
        anthropic, openai = AnthropicStreamEncoder(), OpenAIStreamEncoder(
            chunk_id="chatcmpl-x", model="m", include_usage=True)
        raw_a, raw_o = bytearray(), bytearray()
        for event in stream(pieces):
            batch = filt.feed([event])
            raw_a += anthropic.encode(batch)
            raw_o += openai.encode(batch)
        check_anthropic_stream(parse_anthropic_sse(bytes(raw_a)))
        check_openai_stream(bytes(raw_o))


def test_ids_are_unique_and_anthropic_shaped() -> None:
    ids = {random_tool_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"toolu_[A-Za-z0-9_-]{24}", i) for i in ids)
    one, two = ToolSniffer(NAMES), ToolSniffer(NAMES)
    call = stream(['{"tool": "Read", "args": {}}'])
    first = [e for e in one.feed(call) if isinstance(e, BlockStart)]
    second = [e for e in two.feed(call) if isinstance(e, BlockStart)]
    assert first[0].tool_id != second[0].tool_id


# ------------------------------------------------------------------ many texts, many splits

FRAGMENTS = [
    "Hello there. ", "{", "}", "`", "```", "```json\n", "\n", "  ", '"', "\\", "{x}",
    '{"tool": "Read", "args": {"file_path": "a"}}', '{"tool": "Nope", "args": {}}',
    '{"calls": [{"tool": "Bash", "args": {"command": "ls"}}]}', '{"tool": "Re', "ad", '"}',
    "é😀", ', "args": {}}', "[1, 2]", "true", "tool", ":",
]


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_give_the_same_output_for_every_split(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 25)))
    out = every_split(text)
    found = blocks(out)
    if not any(kind == "tool" for kind, *_ in found):
        assert found in ([("text", text)], []) and "".join(t for _, t in found) == text
    indexes = [e.index for e in out if isinstance(e, BlockStart)]
    assert indexes == list(range(len(indexes)))
