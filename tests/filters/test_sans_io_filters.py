"""The filters and the prompt-tools rewrite are sans-I/O too: neither aiohttp nor asyncio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import proxy

PACKAGE = Path(proxy.__file__).parent
MODULES = sorted("proxy." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
                 for folder in ("filters", "prompt_tools", "dialects/backboard")
                 for p in (PACKAGE / folder).rglob("*.py"))


def test_the_modules_are_found() -> None:
    assert "proxy.filters.tool_sniffer" in MODULES
    assert "proxy.prompt_tools.describe" in MODULES
    assert "proxy.dialects.backboard.conversation" in MODULES


def test_they_import_neither_aiohttp_nor_asyncio() -> None:
    code = (f"import sys\nfor name in {MODULES!r}:\n    __import__(name)\n"
            "print(','.join(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('aiohttp', 'asyncio'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=PACKAGE.parent)
    assert result.stdout.strip() == ""
