"""The SSE decoder: WHATWG framing, whatever way the bytes are cut."""

from __future__ import annotations

import pytest

from proxy.sse import SSEDecoder, SSEEvent, encode_data, encode_event
from tests.support import FIXTURES, decode_sse, splits

ALL_FIXTURES = sorted(p.name for p in (FIXTURES / "openai").glob("*.sse"))


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_split_gives_the_same_events(name: str) -> None:
    data = (FIXTURES / "openai" / name).read_bytes()
    expected = decode_sse([data])
    for chunks in splits(data):
        assert decode_sse(chunks) == expected


def test_crlf_comments_and_multiline_data() -> None:
    events, truncated = decode_sse([(FIXTURES / "openai" / "crlf_multiline.sse").read_bytes()])
    assert not truncated
    assert all("\r" not in e.data for e in events)
    joined = [e.data for e in events if '" there"' in e.data]
    assert len(joined) == 1 and "\n" in joined[0]  # two data: lines joined with LF
    assert events[-1].data == "[DONE]"


def test_u2028_inside_json_is_not_a_line_break() -> None:
    events, _ = decode_sse([(FIXTURES / "openai" / "u2028.sse").read_bytes()])
    assert any("\u2028" in e.data for e in events)
    assert any("\u2029" in e.data for e in events)


def test_crlf_split_across_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent(None, "a")]
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(None, "b")]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"event: ping\ndata: {}\n\n", [SSEEvent("ping", "{}")]),
    (b"data:no-space\n\n", [SSEEvent(None, "no-space")]),
    (b"data:  two spaces\n\n", [SSEEvent(None, " two spaces")]),
    (b"data\n\n", [SSEEvent(None, "")]),
    (b"event: lonely\n\n", []),  # no data: not dispatched
    (b": comment only\n\n", []),
    (b"id: 7\nretry: 10\nfoo: bar\ndata: x\n\n", [SSEEvent(None, "x")]),
    (b"\xef\xbb\xbfdata: bom\n\n", [SSEEvent(None, "bom")]),
    (b"data: a\rdata: b\r\r", [SSEEvent(None, "a\nb")]),
    (b"data: \xff\n\n", [SSEEvent(None, "\ufffd")]),
])
def test_field_rules(raw: bytes, expected: list[SSEEvent]) -> None:
    for chunks in splits(raw):
        assert decode_sse(chunks) == (expected, False)


def test_a_frame_cut_in_the_middle_is_reported_not_dispatched() -> None:
    data = (FIXTURES / "openai" / "truncated.sse").read_bytes()
    for chunks in splits(data):
        events, truncated = decode_sse(chunks)
        assert truncated
        assert all(e.data.endswith("}") for e in events)
    _, truncated = decode_sse([b"data: complete\n\ndata: half"])
    assert truncated
    _, truncated = decode_sse([b"data: no blank line yet\n"])
    assert truncated


def test_encoders() -> None:
    assert encode_event(b"ping", b"{}") == b"event: ping\ndata: {}\n\n"
    assert encode_data(b"[DONE]") == b"data: [DONE]\n\n"


@pytest.mark.parametrize("raw", [
    b"data: a\n\nevent: x\ndata: y\nid: 1\n\n",   # line counts match the event+data shape
    b"event: x\ndata: y\n\ndata: z\n\n",
    b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
    b"data: a\ndata: b\n\nevent: c\n\n",
])
def test_fast_paths_agree_with_the_line_by_line_rules(raw: bytes) -> None:
    # Fed one byte at a time, every line takes the general path: the reference.
    expected = decode_sse([raw[i:i + 1] for i in range(len(raw))])
    assert decode_sse([raw]) == expected
