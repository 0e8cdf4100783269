"""The optional mypyc build (scripts/build_mypyc.py): compiled modules write the very bytes
plain Python writes, a compiled module never outlives its source, and no interpreted class
inherits from a compiled one (mypyc forbids it: TypeError on first use).

The comparison runs every recorded OpenAI and Anthropic stream (whole, byte by byte, in
random pieces) through framing, decoder, ``coalesce`` and encoder in two child processes,
one importing ``proxy`` from a compiled tree, one from plain sources
(tests/mypyc_transcode.py). The compiled tree is the checkout itself when it was built in
place and is fresh; otherwise one is built for the test (some 15 s), or, with no C
compiler here, the test is skipped.
"""

from __future__ import annotations

import ast
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


def test_every_subclass_of_a_compiled_class_is_compiled_too() -> None:
    # An interpreted class may not inherit from a compiled one: a new StreamDecoder left
    # out of MODULES would raise TypeError on its first stream, and only when compiled.
    compiled = {m.removesuffix(".py").replace("/", ".") for m in build_mypyc.MODULES}
    defined: dict[str, str] = {}  # class name -> the compiled module defining it
    trees = {path: ast.parse(path.read_text()) for path in (REPO / "proxy").rglob("*.py")}
    for path, tree in trees.items():
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if module in compiled:
            defined |= {node.name: module for node in ast.walk(tree)
                        if isinstance(node, ast.ClassDef)}
    assert "StreamDecoder" in defined and "SSEDecoder" in defined
    for path, tree in [*trees.items(), *((p, ast.parse(p.read_text()))
                                         for p in (REPO / "tests").rglob("*.py"))]:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or module in compiled:
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                     for b in node.bases}
            assert not bases & defined.keys(), (
                f"{module}.{node.name} inherits from compiled {bases & defined.keys()}: "
                "add its module to scripts/build_mypyc.py MODULES")


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
