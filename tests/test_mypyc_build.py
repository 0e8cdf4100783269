"""The optional mypyc build (scripts/build_mypyc.py): compiled modules write the very bytes
plain Python writes, and a compiled module never outlives its source.

The comparison runs every recorded OpenAI and Anthropic stream (whole, byte by byte, in
random pieces) through framing, decoder, ``coalesce`` and encoder in two child processes,
one importing ``proxy`` from a compiled tree, one from plain sources
(tests/mypyc_transcode.py). The compiled tree is the checkout itself when it was built in
place and is fresh; otherwise one is built for the test (some 15 s), or, with no C
compiler here, the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import build_mypyc  # noqa: E402


def transcoded(tree: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "mypyc_transcode.py")],
                          env=env, cwd=tree, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def compiled_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if build_mypyc.status(REPO) == "compiled":
        return REPO
    reason = build_mypyc.missing_tools()
    if reason is not None:
        pytest.skip(f"{reason}: mypyc cannot build here")
    out = tmp_path_factory.mktemp("mypyc")
    assert build_mypyc.build(out), "the mypyc build failed"
    assert build_mypyc.status(out) == "compiled"
    return out


def test_no_compiled_module_is_older_than_its_source() -> None:
    # A stale extension module would still be the one imported: old code, silently.
    state = build_mypyc.status(REPO)
    assert state in ("plain", "compiled"), (
        f"proxy/ holds {state} mypyc modules: run `bash scripts/build-mypyc` again, "
        "or `bash scripts/build-mypyc --clean`")


def test_compiled_and_plain_python_write_the_same_bytes(compiled_tree: Path,
                                                        tmp_path: Path) -> None:
    shutil.copytree(REPO / "proxy", tmp_path / "proxy",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", build_mypyc.MANIFEST))
    plain, compiled = transcoded(tmp_path), transcoded(compiled_tree)
    assert plain["compiled"] is False
    assert compiled["compiled"] is True
    assert len(plain["results"]) > 100  # every fixture, every splitting, both ways
    assert any(r["error"] for r in plain["results"].values())  # the broken streams too
    for key, want in plain["results"].items():
        assert compiled["results"][key] == want, key
