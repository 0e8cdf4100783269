"""Fixtures the end-to-end modules share: the real Claude Code CLI, found once."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.support import unavailable

REPO = Path(__file__).resolve().parents[2]


def _find_claude() -> str | None:
    candidates = [os.environ.get("CLAUDE_CODE_BIN"),
                  str(REPO / ".cc" / "node_modules" / ".bin" / "claude"),
                  shutil.which("claude")]
    with contextlib.suppress(ImportError):
        import claude_agent_sdk  # type: ignore[import-not-found, unused-ignore]

        candidates.append(str(Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def claude_bin() -> str:
    path = _find_claude()
    if path is None:
        unavailable("Claude Code CLI not found: set CLAUDE_CODE_BIN, or run `npm install "
                    "--no-save --prefix .cc @anthropic-ai/claude-code@2.1.330`, or "
                    "`pip install claude-agent-sdk`.")
    return path
