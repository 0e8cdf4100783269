"""The edge writer without a port: a list stands for the client. Pings after idle gaps
only, the in-stream error frame with no terminal event after it, and a stream that ends
unfinished reported as cut."""

from __future__ import annotations

from proxy.backends.base import Batches
from proxy.canonical import Event
from proxy.dialects.anthropic.stream_encode import PING, AnthropicStreamEncoder, error_frame
from proxy.edge.streaming import write_stream
from proxy.errors import UpstreamStreamError
from proxy.observe.trace import Trace
from tests.fakes.backend import Delay, Fail, FakeBackend, Step, text_answer
from tests.support import check_anthropic_stream, parse_anthropic_sse


class ListSink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False

    async def write(self, data: bytes) -> None:
        assert not self.ended, "a write after the end"
        self.data += data

    async def write_eof(self, data: bytes = b"") -> None:
        self.ended = True


async def write(steps: list[Step], interval: float = 15.0) -> tuple[ListSink, Trace]:
    backend = FakeBackend([steps])
    batches: Batches = backend.stream(None, None, None, None)  # type: ignore[arg-type]
    first: list[Event] = await anext(batches)
    sink, trace = ListSink(), Trace(request_id="req_w")
    await write_stream(sink, first, batches, AnthropicStreamEncoder(), ping=PING,
                       interval=interval, error_frame=error_frame, trace=trace)
    assert backend.calls[0].closed  # the backend's stream is always closed
    return sink, trace


def names(sink: ListSink) -> list[str]:
    return [name for name, _ in parse_anthropic_sse(bytes(sink.data))]


async def test_a_whole_stream_is_written_and_ended() -> None:
    sink, trace = await write(text_answer("a", "b"))
    check_anthropic_stream(parse_anthropic_sse(bytes(sink.data)))
    assert sink.ended and trace.finished and trace.stop_reason == "end_turn"
    assert "ping" not in names(sink)


async def test_pings_go_out_only_after_an_idle_gap() -> None:
    steps = text_answer("a", "b")
    sink, _ = await write([*steps[:2], Delay(0.25), *steps[2:]], interval=0.05)
    seen = names(sink)
    assert "ping" in seen
    first_ping = seen.index("ping")
    assert seen[first_ping - 1] == "content_block_delta"  # the gap came after "a"
    assert seen[-1] == "message_stop"


async def test_a_failure_after_the_first_byte_is_an_error_frame_and_no_stop() -> None:
    steps = text_answer("a", "b")
    sink, trace = await write([*steps[:2], Fail(UpstreamStreamError("overloaded", status=529,
                                                                     kind="overloaded"))])
    frames = parse_anthropic_sse(bytes(sink.data))
    check_anthropic_stream(frames, complete=False)
    assert frames[-1][1]["error"] == {"type": "overloaded_error", "message": "overloaded"}
    assert sink.ended and trace.stop_reason == "error" and trace.errors == ["overloaded"]


async def test_a_stream_that_stops_without_its_end_is_reported_as_cut() -> None:
    steps = text_answer("a")
    sink, _ = await write(steps[:2])
    frames = parse_anthropic_sse(bytes(sink.data))
    check_anthropic_stream(frames, complete=False)
    assert "ended before it finished" in frames[-1][1]["error"]["message"]


async def test_a_bug_becomes_an_api_error_frame_not_a_traceback_to_the_client() -> None:
    steps = text_answer("a")
    sink, _ = await write([*steps[:2], Fail(RuntimeError("bug"))])
    frames = parse_anthropic_sse(bytes(sink.data))
    assert frames[-1][0] == "error" and "bug" not in frames[-1][1]["error"]["message"]
