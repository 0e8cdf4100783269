"""The sans-I/O half of proxy/web_tools loads no I/O library, as the dialects (which import
``history``) must not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import proxy

PURE = ["proxy.web_tools." + name for name in (
    "settings", "spec", "urls", "results", "session", "history", "rounds", "offer")]


def test_the_pure_modules_import_neither_aiohttp_nor_asyncio() -> None:
    code = (
        "import sys\n"
        f"for name in {PURE!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'asyncio'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(proxy.__file__).parent.parent)
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"
