"""scripts/bench.py --quick runs end to end: every scenario and direction, no failures.

Only that the benchmark works and checks what it receives is tested here, never how fast
this machine is: no timing, no target's verdict is asserted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_load import check_stream, check_whole  # noqa: E402
from bench_scenarios import Upstream  # noqa: E402
from bench_upstreams import anthropic_stream, expected_text, openai_stream, whole_answer  # noqa: E402

DIRECTIONS = {"a2o", "o2a", "relay-openai", "relay-anthropic"}
SCENARIOS = {"latency": 1, "throughput": 64, "long-streams": 100, "non-streaming": 32}
CHECKS = {"latency": 1, "throughput": 1, "long-streams": 3, "non-streaming": 1}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "scripts/bench.py", "--no-progress", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_quick_bench_covers_every_scenario_and_direction(tmp_path: Path) -> None:
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    done = run_bench("--quick", "--json", str(out), "--plot", str(png))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(out.read_bytes())
    scenarios = {(sc["scenario"], sc["direction"]): sc for sc in doc["scenarios"]}
    assert set(scenarios) == {(s, d) for s in SCENARIOS for d in DIRECTIONS}
    for (name, direction), sc in scenarios.items():
        key = (name, direction)
        assert sc["concurrency"] == SCENARIOS[name], key
        assert set(sc["paths"]) == {"direct", "proxy"}, key
        for path_name, path in sc["paths"].items():
            assert path["ok"] > 0 and path["failed"] == 0, (key, path_name, path)
        assert sc["errors"] == {}, key
        assert len(sc["checks"]) == CHECKS[name], key
        assert all(type(check["passed"]) is bool for check in sc["checks"]), key
    for direction in DIRECTIONS:
        long = scenarios["long-streams", direction]
        extra = long["extra"]
        assert long["paths"]["proxy"]["ok"] == extra["launched"] == 200  # every stream, whole
        assert extra["proxy_peak_rss_mb"] > extra["proxy_idle_rss_mb"] * 0.5 > 0
        assert extra["text_deltas"]["direct"] == [20, 20]  # the fake's 20 chunks, each its own
        assert 1 <= extra["text_deltas"]["proxy"][0] <= extra["text_deltas"]["proxy"][1] <= 20
    assert len(doc["targets"]) == sum(CHECKS.values()) * len(DIRECTIONS)
    assert "== targets" in done.stdout and "peak" in done.stdout
    assert png.exists() or "needs matplotlib" in done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bench_against_an_upstream_url(tmp_path: Path) -> None:
    """--upstream-url, exercised with the fake started on its own (never a real URL)."""
    port = free_port()
    script = str(REPO / "scripts" / "bench_upstreams.py")
    fake = subprocess.Popen([sys.executable, script, str(port), "openai"], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
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
