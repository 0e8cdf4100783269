"""scripts/bench.py --quick runs end to end: every direction, both concurrencies, no failures.

Only that the benchmark works is checked here, never how fast this machine is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
DIRECTIONS = {"a2o", "o2a", "relay-openai", "relay-anthropic"}


def test_quick_bench_covers_every_direction(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "scripts/bench.py", "--quick", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(out.read_bytes())
    scenarios = {(sc["direction"], sc["concurrency"]): sc for sc in doc["scenarios"]}
    assert set(scenarios) == {(d, c) for d in DIRECTIONS for c in (1, 64)}
    for key, sc in scenarios.items():
        assert set(sc["paths"]) == {"direct", "proxy"}, key
        for name, path in sc["paths"].items():
            assert path["ok"] > 0 and path["failed"] == 0, (key, name, path)
        assert sc["errors"] == {}, key
        assert [type(check["passed"]) for check in sc["checks"]] == [bool], key  # one target each
    assert "== targets" in done.stdout
