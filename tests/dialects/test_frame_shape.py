"""The decoders' hot path (proxy/dialects/frame_shape.py): a frame with the same bytes as
the last text frame but for its text. It must give exactly what the general path gives,
and anything that is not such a frame must take the general path."""

from __future__ import annotations

import orjson
import pytest

from proxy.canonical import Event
from proxy.dialects.frame_shape import TextShape
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from tests.fakes.openai_upstream import text_stream

HEAD = b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":'
TAIL = b'},"logprobs":null,"finish_reason":null}]}'


def frame(literal: bytes) -> bytes:
    return HEAD + literal + TAIL


def shape() -> TextShape:
    learned = TextShape()
    learned.learn(frame(b'"first"'), b'"content":', "first")
    return learned


@pytest.mark.parametrize(("literal", "text"), [
    (b'"plain"', "plain"), (b'"with \\"quotes\\" and \\\\"', 'with "quotes" and \\'),
    (b'"\\u00e9\\n\\ud83d\\ude00"', "é\n😀"), (b'""', ""),
])
def test_a_frame_of_the_same_shape_gives_its_text(literal: bytes, text: str) -> None:
    assert shape().text(frame(literal)) == text


@pytest.mark.parametrize("data", [
    frame(b'"a","refusal":"b"'),  # two strings: another object, the general path's
    frame(b'5'), frame(b'null'), frame(b'"open'), HEAD + b'"x"' + TAIL[:-1] + b',"usage":1}',
    b'{"id":"d"' + frame(b'"x"')[9:],  # another id: not the same prefix
])
def test_anything_else_is_not_taken(data: bytes) -> None:
    assert shape().text(data) is None


def test_nothing_is_learned_from_a_frame_whose_marker_is_another_fields() -> None:
    learned = TextShape()
    learned.learn(b'{"content":"other","delta":{"content":"mine"}}', b'"content":', "mine")
    assert learned.text(b'{"content":"other","delta":{"content":"x"}}') is None


def decode(frames: list[str | bytes]) -> list[Event]:
    decoder = OpenAIStreamDecoder(message_id="m", model="x", input_tokens=1)
    events = [e for f in frames for e in decoder.feed([f])]
    return events + (decoder.finish() if not decoder.done else [])


def frames_of(chunks: list[bytes]) -> list[bytes]:
    return [f[6:] for c in chunks for f in c.split(b"\n\n") if f.startswith(b"data: ")]


@pytest.mark.parametrize("pieces", [
    ["Hel", "lo", ' "quoted"', "\\", "é😀", "", "end"],
    ["a"] * 50,
])
def test_the_hot_path_gives_what_the_general_path_gives(pieces: list[str]) -> None:
    raw = frames_of(text_stream(pieces))
    fast = decode(list(raw))  # bytes: the shape is learned and used
    general = decode([f.decode() for f in raw])  # text: the general path throughout
    assert fast == general


def test_a_changed_frame_mid_stream_falls_back() -> None:
    raw = frames_of(text_stream(["one", "two", "three"]))
    text_frames = [f for f in raw if b'"content":"t' in f]
    odd = orjson.loads(text_frames[0])
    odd["choices"][0]["delta"]["reasoning_content"] = "hmm"
    mixed = [*raw[:3], orjson.dumps(odd), *raw[3:]]
    events = decode(mixed)
    assert any(type(e).__name__ == "ThinkingDelta" for e in events)


@pytest.mark.parametrize("name", ["anthropic/parallel_tools.sse", "anthropic/thinking.sse",
                                  "anthropic/tool_use.sse"])
def test_the_anthropic_hot_path_gives_what_the_general_path_gives(name: str) -> None:
    from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
    from proxy.sse import SSEDecoder
    from tests.fakes import anthropic_upstream as fake
    from tests.support import fixture

    def run(frames: list[str | bytes]) -> list[Event]:
        decoder = AnthropicStreamDecoder(message_id="m", model="x", input_tokens=1)
        return [e for f in frames for e in decoder.feed([f])]

    raw = fixture(name)
    frames = SSEDecoder().frames(raw)
    assert run(list(frames)) == run([f.decode() for f in frames])
    two_texts = b"".join(fake.blocks_stream([fake.text_block(["x", "y", "z"]),
                                             fake.tool_use_block("t1", "f", ['{"a":1}']),
                                             fake.text_block(["p", "q"])]))
    frames = SSEDecoder().frames(two_texts)
    assert run(list(frames)) == run([f.decode() for f in frames])
