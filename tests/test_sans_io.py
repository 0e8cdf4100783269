"""The core (wire, canonical model, dialects, token estimate, errors, kinds, redaction,
filters, the headers table) loads no I/O library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import proxy

PACKAGE = Path(proxy.__file__).parent
CORE = ["proxy.sse", "proxy.canonical", "proxy.tokens", "proxy.errors", "proxy.kinds",
        "proxy.redaction", "proxy.filters", "proxy.backends.headers", "proxy.ndjson"] + sorted(
    "proxy." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
    for p in (PACKAGE / "dialects").rglob("*.py") if p.name != "__init__.py")


def test_the_core_modules_are_the_ones_we_think() -> None:
    assert "proxy.dialects.openai.stream_decode" in CORE
    assert "proxy.dialects.anthropic.request_parse" in CORE


def test_the_core_imports_neither_aiohttp_nor_asyncio() -> None:
    code = (
        "import sys\n"
        f"for name in {CORE!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'asyncio'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=PACKAGE.parent)
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"
