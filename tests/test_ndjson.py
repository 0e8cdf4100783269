"""NDJSON framing: the same lines whole, byte by byte and in random splits; CRLF, blank lines,
multi-byte characters across reads, a cut last line, and the cap on one line's size."""

from __future__ import annotations

import json

import pytest

from proxy.errors import UpstreamProtocolError
from proxy.ndjson import NDJSONDecoder
from tests.support import fixture, splits


def decode(chunks: list[bytes], **kwargs: int) -> tuple[list[str], bool]:
    decoder = NDJSONDecoder(**kwargs)
    lines = [line for chunk in chunks for line in decoder.feed(chunk)]
    return lines, decoder.truncated


def decode_all(raw: bytes, **kwargs: int) -> tuple[list[str], bool]:
    """Every split of ``raw`` gives the same lines and the same ``truncated``."""
    results = [decode(chunks, **kwargs) for chunks in splits(raw)]
    for other in results[1:]:
        assert other == results[0]
    return results[0]


def test_lines_come_out_decoded_and_in_order() -> None:
    raw = b'{"a": 1}\n{"b": "two"}\n{"c": [3]}\n'
    lines, truncated = decode_all(raw)
    assert [json.loads(line) for line in lines] == [{"a": 1}, {"b": "two"}, {"c": [3]}]
    assert truncated is False


def test_crlf_is_tolerated_and_blank_lines_are_skipped() -> None:
    raw = b'{"a": 1}\r\n\r\n\n   \n{"b": 2}\r\n \t\r\n{"c": 3}\n'
    lines, truncated = decode_all(raw)
    assert lines == ['{"a": 1}', '{"b": 2}', '{"c": 3}']
    assert not truncated


def test_a_lone_cr_is_data_not_a_line_end() -> None:
    lines, _ = decode_all(b'{"a": "x"}\r{"b": 2}\n')
    assert lines == ['{"a": "x"}\r{"b": 2}']


def test_multibyte_characters_split_across_reads() -> None:
    text = "héllo wörld 日本語 😀 \u2028 end"  # U+2028 is no line break in NDJSON
    raw = json.dumps({"t": text}, ensure_ascii=False).encode() + b"\n"
    lines, _ = decode_all(raw)
    assert [json.loads(line)["t"] for line in lines] == [text]
    # every cut inside the 4-byte emoji, fed as two reads
    start = raw.index("😀".encode())
    for cut in range(start + 1, start + 4):
        assert decode([raw[:cut], raw[cut:]])[0] == lines


def test_a_line_without_its_end_is_held_and_reported_as_truncated() -> None:
    lines, truncated = decode_all(b'{"a": 1}\n{"b": ')
    assert lines == ['{"a": 1}'] and truncated is True
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"b": ') == [] and decoder.truncated
    assert decoder.feed(b'2}\n') == ['{"b": 2}'] and not decoder.truncated


def test_trailing_whitespace_without_a_line_end_is_not_a_truncated_line() -> None:
    assert decode_all(b'{"a": 1}\n  \r') == (['{"a": 1}'], False)


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    lines, _ = decode_all(b'{"a": "\xff\xfe"}\n')
    assert lines == ['{"a": "\ufffd\ufffd"}']


def test_empty_reads_change_nothing() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b"") == [] and not decoder.truncated
    assert decoder.feed(b'{"a"') == []
    assert decoder.feed(b"") == [] and decoder.truncated
    assert decoder.feed(b": 1}\n") == ['{"a": 1}']


def test_frames_is_feed() -> None:
    decoder = NDJSONDecoder()
    assert decoder.frames(b'{"a": 1}\n{"b"') == ['{"a": 1}']
    assert decoder.truncated


def test_a_recorded_cli_stream_splits_the_same_every_way() -> None:
    raw = fixture("claude_code_cli/text.jsonl")
    lines, truncated = decode_all(raw)
    assert not truncated
    assert lines == [line for line in raw.decode().split("\n") if line]
    assert [json.loads(line)["type"] for line in lines][-1] == "result"


# ---------------------------------------------------------------------------- the cap


def test_a_line_at_the_cap_passes_and_one_byte_more_fails() -> None:
    at_cap = b'"' + b"x" * 98 + b'"'  # 100 bytes
    assert decode_all(at_cap + b"\n", max_line_bytes=100) == ([at_cap.decode()], False)
    with pytest.raises(UpstreamProtocolError, match="longer than 100 bytes"):
        decode([at_cap + b"x\n"], max_line_bytes=100)


def test_the_cap_holds_while_a_line_is_still_arriving() -> None:
    decoder = NDJSONDecoder(max_line_bytes=1000)
    decoder.feed(b"x" * 600)
    with pytest.raises(UpstreamProtocolError):
        decoder.feed(b"x" * 600)  # no line end yet: it fails before it ever ends


def test_the_cap_counts_a_line_split_across_many_reads() -> None:
    with pytest.raises(UpstreamProtocolError):
        decode([b"y" * 10 for _ in range(20)] + [b"\n"], max_line_bytes=150)


def test_the_default_cap_is_16_mib() -> None:
    decoder = NDJSONDecoder()
    decoder.feed(b"z" * (16 * 1024 * 1024))
    with pytest.raises(UpstreamProtocolError):
        decoder.feed(b"z")


def test_a_cap_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError):
        NDJSONDecoder(max_line_bytes=0)


def test_a_long_line_in_small_reads_is_held_not_rejoined_each_read() -> None:
    """4 MiB in 64-byte reads: 65,536 reads. Joining the held bytes on every read would
    copy ~128 GiB and never finish; holding the pieces copies the line once."""
    payload = b"a" * (4 * 1024 * 1024)
    line = b'{"t": "' + payload + b'"}'
    decoder = NDJSONDecoder()
    out: list[str] = []
    for start in range(0, len(line), 64):
        out += decoder.feed(line[start:start + 64])
    out += decoder.feed(b"\n")
    assert len(out) == 1 and len(out[0]) == len(line)


def test_the_framing_loads_no_io_library() -> None:
    import subprocess
    import sys
    code = ("import sys, proxy.ndjson\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'asyncio')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
