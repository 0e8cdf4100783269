#!/usr/bin/env python3
"""Compile the per-chunk hot path with mypyc, in place, when a C compiler is present.

An optional build (``bash scripts/build-mypyc``): the proxy runs the same without it, as
plain Python. The modules compiled are those every upstream read goes through (SSE
framing, the stream decoders, ``coalesce``, the stream encoders) and what they import that
mypyc must see compiled: ``StreamDecoder``'s subclasses are compiled with it, since
interpreted classes may not inherit from a compiled one. Measured by
scripts/measure_mypyc.py.

How: the sources are copied to a scratch directory and built there (mypyc through
setuptools, away from pyproject.toml and without a ``build/`` in the checkout); the
extension modules are then copied next to their sources (``proxy/sse.cpython-311-….so``
beside ``proxy/sse.py``: Python imports the extension first) with the shared library
mypyc makes (``proxy/core__mypyc….so``), and ``proxy/.mypyc-build.json`` records each
source's SHA-256. A compiled module is stale once its source changes; it would still be
the one imported, so tests/test_mypyc_build.py fails until you build again or clean.

    bash scripts/build-mypyc            # compile in place (no compiler: say so, change nothing)
    bash scripts/build-mypyc --clean    # back to plain Python
    bash scripts/build-mypyc --status   # compiled, fresh, stale or plain
    bash scripts/build-mypyc --out DIR  # a compiled copy of proxy/ in DIR (for measuring)

Exit status: 0 when built, when there is nothing to build with (no compiler, no Python
headers, no mypyc: the proxy stays plain Python), or for --clean/--status; 1 when the build
itself failed (proxy/ is then left as it was).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = (
    "proxy/sse.py",
    "proxy/canonical.py",
    "proxy/dialects/frame_shape.py",
    "proxy/dialects/json_progress.py",
    "proxy/dialects/stream_decoding.py",
    "proxy/dialects/openai/stream_decode.py",
    "proxy/dialects/openai/stream_encode.py",
    "proxy/dialects/anthropic/stream_decode.py",
    "proxy/dialects/anthropic/stream_encode.py",
    # Subclasses of StreamDecoder: compiled because it is.
    "proxy/dialects/backboard/stream_decode.py",
    "proxy/dialects/claude_code/stream_decode.py",
)
GROUP = "proxy.core"  # the shared library: proxy/core__mypyc.<suffix>
MANIFEST = ".mypyc-build.json"
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so

SETUP = """\
from mypyc.build import mypycify
from setuptools import setup

setup(name="proxy-core-mypyc", ext_modules=mypycify({modules!r}, opt_level="3",
      group_name={group!r}), script_args=["build_ext", "--inplace"])
"""


def compiled_paths(tree: Path) -> list[Path]:
    """The extension files a build puts in ``tree``: one per module and the shared one."""
    stems = [m.removesuffix(".py") for m in MODULES] + [GROUP.replace(".", "/") + "__mypyc"]
    return [tree / (stem + SUFFIX) for stem in stems]


def source_digests(tree: Path) -> dict[str, str]:
    return {m: hashlib.sha256((tree / m).read_bytes()).hexdigest() for m in MODULES}


def status(tree: Path) -> str:
    """``plain``, ``compiled`` (and fresh), ``stale`` (a source changed since) or
    ``partial`` (some compiled files are missing)."""
    present = [p.exists() for p in compiled_paths(tree)]
    if not any(present):
        return "plain"
    if not all(present):
        return "partial"
    try:
        recorded = json.loads((tree / "proxy" / MANIFEST).read_text())["sources"]
    except (OSError, ValueError, KeyError):
        return "stale"
    return "compiled" if recorded == source_digests(tree) else "stale"


def missing_tools() -> str | None:
    """Why nothing can be compiled here, or None if it can."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")[:1]
    if not cc or shutil.which(cc[0]) is None:
        return f"no C compiler ({' '.join(cc) or 'CC'} not found)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return "no mypyc (pip install mypy)"
    return None


def clean(tree: Path) -> None:
    for path in [*compiled_paths(tree), tree / "proxy" / MANIFEST]:
        path.unlink(missing_ok=True)


def build(target: Path) -> bool:
    """Compile MODULES from this checkout into ``target`` (the checkout itself, or a
    directory that gets a copy of proxy/). True when built."""
    with tempfile.TemporaryDirectory(prefix="mypyc-build-") as scratch:
        work = Path(scratch)
        shutil.copytree(REPO / "proxy", work / "proxy",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", MANIFEST))
        (work / "setup.py").write_text(SETUP.format(modules=list(MODULES), group=GROUP))
        done = subprocess.run([sys.executable, "setup.py"], cwd=work, capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0 or not all(p.exists() for p in compiled_paths(work)):
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            return False
        if target != REPO:
            shutil.copytree(REPO / "proxy", target / "proxy", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so", MANIFEST))
        clean(target)
        for built, dest in zip(compiled_paths(work), compiled_paths(target), strict=True):
            shutil.copy2(built, dest)
        manifest = {"python": sys.version.split()[0], "suffix": SUFFIX,
                    "sources": source_digests(work)}
        (target / "proxy" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--clean", action="store_true", help="remove the compiled modules")
    what.add_argument("--status", action="store_true", help="say whether proxy/ is compiled")
    what.add_argument("--out", type=Path, help="build a compiled copy of proxy/ in OUT")
    args = parser.parse_args()
    if args.status:
        print(status(REPO))
        return 0
    if args.clean:
        clean(REPO)
        print("proxy/ runs as plain Python")
        return 0
    reason = missing_tools()
    if reason is not None:
        print(f"{reason}: nothing compiled, proxy/ runs as plain Python")
        return 0
    target = (args.out or REPO).resolve()
    if not build(target):
        print("the mypyc build failed (above); proxy/ is unchanged", file=sys.stderr)
        return 1
    where = "proxy/" if target == REPO else f"{target}/proxy/"
    print(f"compiled {len(MODULES)} modules into {where} with mypyc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
