"""scripts/bench.py --quick runs end to end: every scenario, workload and direction, no
failures; and its parts: the workloads' bodies, the fake upstream's writes, the load
generator's HTTP parser, the checks of what comes back. scripts/bench_backends.py --quick
runs its backboard and CLI scenarios against their fakes, every answer checked.

Only that the benchmark works and checks what it receives is tested here, never how fast
this machine is: no timing, no target's verdict is asserted.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from proxy.dialects.anthropic.request_parse import parse_request as parse_anthropic
from proxy.dialects.openai.request_parse import parse_request as parse_openai
from tests.support import splits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_client import ResponseParser  # noqa: E402
from bench_fake_http import LAST_CHUNK, SSE_HEAD, FakeHTTP, Pacer, chunk  # noqa: E402
from bench_load import check_stream, check_whole  # noqa: E402
from bench_scenarios import Upstream  # noqa: E402
from bench_upstreams import (  # noqa: E402
    Answers,
    anthropic_stream,
    expected_text,
    openai_stream,
    whole_answer,
)
from bench_workload import claude_code_body, light_body  # noqa: E402

DIRECTIONS = {"a2o", "o2a", "relay-openai", "relay-anthropic"}
WORKLOADS = {"claude-code", "light"}
SCENARIOS = {"latency": 1, "throughput": 64, "long-streams": 100, "non-streaming": 32}
CHECKS = {"latency": 1, "throughput": 1, "long-streams": 3, "non-streaming": 1}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "scripts/bench.py", "--no-progress", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)


def test_quick_bench_covers_every_scenario_workload_and_direction(tmp_path: Path) -> None:
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    done = run_bench("--quick", "--json", str(out), "--plot", str(png))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(out.read_bytes())
    scenarios = {(sc["scenario"], sc["workload"], sc["direction"]): sc for sc in doc["scenarios"]}
    assert set(scenarios) == {(s, w, d) for s in SCENARIOS for w in WORKLOADS for d in DIRECTIONS}
    for (name, workload, direction), sc in scenarios.items():
        key = (name, workload, direction)
        assert sc["concurrency"] == SCENARIOS[name], key
        assert set(sc["paths"]) == {"direct", "proxy"}, key
        for path_name, path in sc["paths"].items():
            assert path["ok"] > 0 and path["failed"] == 0, (key, path_name, path)
            assert path["reads"] >= 1 and len(path["ttfc_ms"]) == 3, (key, path_name)
        assert sc["errors"] == {}, key
        assert len(sc["checks"]) == CHECKS[name], key
        assert all(type(check["passed"]) is bool for check in sc["checks"]), key
        size = sc["extra"]["body_bytes"]["proxy"]
        assert 70_000 < size < 76_000 if workload == "claude-code" else size < 300, key
        proxy = sc["extra"]["per_request"]["proxy"]["proxy"]
        assert proxy["cpu_ms"] > 0 and proxy["reads"] >= 1, key  # the proxy did the work
    for workload in WORKLOADS:
        for direction in DIRECTIONS:
            long = scenarios["long-streams", workload, direction]
            extra = long["extra"]
            assert long["paths"]["proxy"]["ok"] == extra["launched"] == 200  # every stream, whole
            assert long["paths"]["proxy"]["lost"] == 0
            assert extra["spread_ms"] == 0  # all at once
            assert extra["proxy_peak_rss_mb"] > extra["proxy_idle_rss_mb"] * 0.5 > 0
            assert extra["text_deltas"]["direct"] == [20, 20]  # the fake's 20 chunks, each its own
            assert 1 <= extra["text_deltas"]["proxy"][0] <= extra["text_deltas"]["proxy"][1] <= 20
    assert len(doc["targets"]) == sum(CHECKS.values()) * len(DIRECTIONS) * len(WORKLOADS)
    assert doc["workloads"] == ["claude-code", "light"]
    assert "== targets" in done.stdout and "peak" in done.stdout
    assert png.exists() or "needs matplotlib" in done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_backends(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "backends.json"
    cmd = [sys.executable, "scripts/bench_backends.py", "--quick", "--json", str(out), *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc: dict[str, object] = orjson.loads(out.read_bytes())
    return doc


def test_the_backboard_scenario_sends_both_requests_and_checks_them(tmp_path: Path) -> None:
    doc = run_backends(tmp_path, "--scenario", "backboard", "--delays-ms", "0", "--texts",
                       "prose,braces", "--chunks", "40")
    cases = doc["http"]
    assert isinstance(cases, list) and [c["text"] for c in cases] == ["prose", "braces"]
    for case in cases:
        for name in ("sniffer", "plain"):  # every answer whole, its text the one asked for
            path = case["paths"][name]
            assert path["ok"] == 4 and path["failed"] == 0, (case["case"], name)
        assert case["errors"] == {}
    inproc = doc["in_process"]
    assert isinstance(inproc, dict)
    assert set(inproc["read_loop_us_per_chunk"]) == {"prose", "braces"}
    assert set(inproc["request_side_us"]) == {"sniffer", "plain"}


def test_the_cli_scenarios_run_against_the_fake_cli(tmp_path: Path) -> None:
    doc = run_backends(tmp_path, "--scenario", "cli", "--pool-size", "2", "--startup", "0.1",
                       "--reply", "40", "--delta", "0.001")
    results = doc["results"]
    assert isinstance(results, list)
    names = [r["scenario"] for r in results]
    assert names == ["warm", "cold", "back-to-back", "throughput", "throughput", "burst",
                     "burst", "burst"]
    for r in results:
        if r["scenario"] == "burst":  # a full queue answers 503 with retry-after, nothing else
            assert set(r["statuses"]) <= {"200", "503"}, r
            assert sum(r["retry_after"].values()) == r["statuses"].get("503", 0), r
            assert r["ok"] + r["statuses"].get("503", 0) == r["clients"], r
        else:
            assert r["failed"] == 0 and r["ok"] > 0, r


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_bench_against_an_upstream_url(tmp_path: Path) -> None:
    """--upstream-url, exercised with the fake started on its own (never a real URL)."""
    port = free_port()
    script = str(REPO / "scripts" / "bench_upstreams.py")
    fake = subprocess.Popen([sys.executable, script, str(port), "openai"], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert time.monotonic() < deadline and fake.poll() is None
            time.sleep(0.05)
        out = tmp_path / "bench.json"
        url = f"http://127.0.0.1:{port}/v1"
        args = ["--upstream-url", url, "--upstream-key", "k", "--model", "fake-model", "--quick"]
        args += ["--scenarios", "latency,long-streams,non-streaming", "--streams", "10"]
        args += ["--chunks", "5", "--json", str(out)]
        done = run_bench(*args)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(out.read_bytes())
    assert doc["upstream"] == f"{url} (openai)"
    got = {(sc["scenario"], sc["direction"]) for sc in doc["scenarios"]}
    wanted = {"latency", "long-streams", "non-streaming"}
    assert got == {(s, d) for s in wanted for d in ("a2o", "relay-openai")}
    for sc in doc["scenarios"]:
        assert sc["errors"] == {} and sc["paths"]["proxy"]["ok"] > 0, sc


def test_an_upstream_url_serves_only_its_own_dialect() -> None:
    done = run_bench("--upstream-url", "http://127.0.0.1:9/v1", "--upstream-key", "k",
                     "--model", "m", "--directions", "o2a")  # fmt: skip
    assert done.returncode == 2 and "serves only a2o,relay-openai" in done.stderr


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_streams_are_checked_whole(dialect: str) -> None:
    head, texts, tail = (openai_stream if dialect == "openai" else anthropic_stream)(5)
    expect = expected_text(dialect, 5)
    whole = b"".join(head + texts + tail)
    assert check_stream(dialect, whole, expect) == (None, 5)
    assert check_stream(dialect, whole, None) == (None, 5)
    missing = b"".join(head + texts[:2] + texts[3:] + tail)
    assert "text differs" in str(check_stream(dialect, missing, expect)[0])
    assert "ended without" in str(check_stream(dialect, b"".join(head + texts), expect)[0])
    crlf = whole.replace(b"\n", b"\r\n")
    assert check_stream(dialect, crlf, expect) == (None, 5)
    error = b'data: {"type": "error", "error": {"type": "overloaded_error"}}\n\n'
    assert "error event" in str(check_stream(dialect, b"".join(head) + error, expect)[0])


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_whole_answers_are_checked(dialect: str) -> None:
    body = whole_answer(dialect)
    assert check_whole(dialect, body, expected_text(dialect)) is None
    assert "text differs" in str(check_whole(dialect, body, "something else"))
    assert "not a" in str(check_whole(dialect, b'{"id": "x"}', None))


def test_paced_urls() -> None:
    fake = Upstream("openai", "http://127.0.0.1:1/v1", "k", "m", fake=True)
    assert fake.paced(100, 20) == "http://127.0.0.1:1/paced/100/20/v1"
    assert fake.endpoint(fake.paced(3, 4)) == "http://127.0.0.1:1/paced/3/4/v1/chat/completions"
    fake = Upstream("anthropic", "http://127.0.0.1:1", "k", "m", fake=True)
    assert fake.endpoint(fake.paced(3, 4)) == "http://127.0.0.1:1/paced/3/4/v1/messages"
    real = Upstream("anthropic", "https://api.example.com/v1", "k", "m", fake=False)
    assert real.endpoint() == "https://api.example.com/v1/messages"
    real = Upstream("openai", "https://api.example.com/v1", "k", "m", fake=False)
    assert real.paced(100, 20) == real.base


# --- the workloads ------------------------------------------------------------------------


def test_the_claude_code_workload_is_the_issue_s_shape() -> None:
    raw = claude_code_body("anthropic", "m", True)
    assert raw == claude_code_body("anthropic", "m", True)  # fixed bytes, run after run
    assert 72_000 <= len(raw) <= 74_000
    body = orjson.loads(raw)
    assert len(body["system"]) == 2 and all("cache_control" in b for b in body["system"])
    assert 28_000 <= sum(len(b["text"]) for b in body["system"]) <= 32_000
    assert len(body["tools"]) == 20
    sizes = [len(t["description"]) for t in body["tools"]]
    assert min(sizes) == 300 and max(sizes) == 1500
    assert all(t["input_schema"]["additionalProperties"] is False for t in body["tools"])
    first, call, result = body["messages"]
    assert first["content"][0]["text"].startswith("<system-reminder>")
    assert call["content"][1]["type"] == "tool_use"
    assert result["content"][0]["type"] == "tool_result"
    assert len(result["content"][0]["content"]) == 2500
    assert body["max_tokens"] == 32000 and body["stream"] is True
    assert orjson.loads(body["metadata"]["user_id"])["session_id"]  # a JSON-encoded string
    parsed = parse_anthropic(body)  # the proxy takes it whole, dropping nothing
    assert parsed.dropped == () and len(parsed.tools) == 20 and parsed.max_tokens == 32000


def test_the_openai_twin_says_the_same() -> None:
    anthropic = parse_anthropic(orjson.loads(claude_code_body("anthropic", "m", True)))
    body = orjson.loads(claude_code_body("openai", "m", True))
    assert body["stream_options"] == {"include_usage": True}
    openai = parse_openai(body)
    assert openai.dropped == ()
    assert [m.role for m in openai.messages] == [m.role for m in anthropic.messages]
    assert [t.name for t in openai.tools] == [t.name for t in anthropic.tools]
    assert openai.user_id == anthropic.user_id and openai.max_tokens == anthropic.max_tokens
    assert orjson.loads(claude_code_body("openai", "m", False))["stream"] is False
    light = orjson.loads(light_body("openai", "m", True, "hi", 1024))
    assert light["messages"] == [{"role": "user", "content": "hi"}]


# --- the fake upstream's writes -----------------------------------------------------------


class RecordingTransport:
    """What a FakeHTTP connection writes, one element per write; pushes back on demand."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True


async def settle(loop_turns: int = 500) -> None:
    for _ in range(loop_turns):
        await asyncio.sleep(0)


async def finished(transport: RecordingTransport, limit: float = 10.0) -> None:
    """Until the fake wrote its last chunk (it paces by the millisecond, so loop turns
    alone are not enough on a busy machine); a bound, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + limit
    while not (transport.writes and transport.writes[-1] == LAST_CHUNK):
        assert asyncio.get_running_loop().time() < deadline, "the fake never finished"
        await asyncio.sleep(0.001)


def request(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(), len(body), body)


@pytest.mark.parametrize("chunk_yield", [True, False])
async def test_the_fake_writes_each_frame_as_one_chunk_with_one_write(chunk_yield: bool) -> None:
    answers = Answers("openai")
    conn = FakeHTTP(answers.route, Pacer(asyncio.get_running_loop()), chunk_yield)
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    wire = request("/v1/chat/completions", b'{"stream": true}')
    for piece in (wire[:7], wire[7:30], wire[30:]):  # a request may come in pieces
        conn.data_received(piece)
    await finished(transport)
    head, texts, tail = openai_stream()
    assert transport.writes == [SSE_HEAD, *(chunk(f) for f in head + texts + tail), LAST_CHUNK]
    parser = ResponseParser()
    assert parser.feed(b"".join(transport.writes)) and parser.status == 200
    assert check_stream("openai", parser.body(), expected_text("openai")) == (None, len(texts))


async def test_the_fake_waits_for_its_transport_to_drain() -> None:
    conn = FakeHTTP(Answers("anthropic").route, Pacer(asyncio.get_running_loop()), True)
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(request("/v1/messages", b"{}"))
    await settle(3)
    conn.pause_writing()  # the kernel did not take the last write whole
    written = len(transport.writes)
    await settle()
    assert 1 < written == len(transport.writes)  # nothing more until it drained
    conn.resume_writing()
    await finished(transport)
    head, texts, tail = anthropic_stream()
    frames = head + texts + tail
    assert transport.writes == [SSE_HEAD, *(chunk(f) for f in frames), LAST_CHUNK]


async def test_the_fake_answers_the_next_request_and_refuses_a_chunked_one() -> None:
    conn = FakeHTTP(Answers("openai").route, Pacer(asyncio.get_running_loop()), False)
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(request("/v1/chat/completions", b'{"stream":false}')
                       + request("/health", b""))  # two at once: answered in order
    await settle()
    assert transport.writes[0].endswith(whole_answer("openai"))
    assert transport.writes[1].startswith(b"HTTP/1.1 404")  # /health is a GET
    conn.data_received(b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert transport.writes[-1].startswith(b"HTTP/1.1 411") and transport.closed


# --- the load generator's parser ----------------------------------------------------------


def chunked(frames: list[bytes], trailer: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(chunk(f) for f in frames) + b"0\r\n" + trailer + b"\r\n"


def parse_pieces(pieces: list[bytes]) -> tuple[list[bool], ResponseParser]:
    parser = ResponseParser()
    return [parser.feed(p) for p in pieces], parser


@pytest.mark.parametrize("trailer", [b"", b"X-Trailer: 1\r\n"])
def test_a_chunked_answer_parses_alike_in_any_split(trailer: bytes) -> None:
    head, texts, tail = anthropic_stream(5)
    frames = head + texts + tail
    data = chunked(frames, trailer)
    for pieces in splits(data):
        done, parser = parse_pieces(pieces)
        assert done[-1] and not any(done[:-1]), "complete at the last byte, not before"
        assert parser.body() == b"".join(frames) and parser.keep_alive


def test_content_length_and_until_close_answers() -> None:
    body = whole_answer("anthropic")
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    for pieces in splits(data):
        done, parser = parse_pieces(pieces)
        assert done[-1] and not any(done[:-1]) and parser.body() == body
    done, parser = parse_pieces([b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\noops"])
    assert not done[-1] and parser.eof() and parser.body() == b"oops"
    assert parser.status == 502 and not parser.keep_alive
    for garbage in (b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                    b"chunked\r\n\r\nzz\r\n"):
        with pytest.raises(ValueError):
            parse_pieces([garbage])
