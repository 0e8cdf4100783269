"""Settings precedence, .env.example completeness, and `python -m proxy` starting up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.config import SETTINGS, Settings, load_settings
from proxy.routing import single_provider

ROOT = Path(__file__).parent.parent


def test_flags_beat_environment_beat_dotenv_beat_defaults(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=1111\nMODEL=from-dotenv\nLOG_LEVEL=DEBUG\n")
    environ = {"PORT": "2222", "MODEL": "from-env"}
    settings = load_settings(["--env-file", str(dotenv), "--port", "3333"], environ)
    assert settings.port == 3333
    assert settings.model == "from-env"
    assert settings.log_level == "DEBUG"
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize(("raw", "expected"), [
    ("http://h:1/v1", "http://h:1/v1"),
    ("http://h:1/v1/", "http://h:1/v1"),
    ("http://h:1/v1/chat/completions", "http://h:1/v1"),  # a2o's habit
])
def test_upstream_urls(raw: str, expected: str, tmp_path: Path) -> None:
    settings = load_settings(["--upstream", raw, "--env-file", str(tmp_path / "none")], {})
    assert settings.upstream_url == expected
    # What requests are sent to: the one provider these settings make.
    assert single_provider(settings).chat_completions_url == expected + "/chat/completions"


def test_typed_values_and_a_clear_error(tmp_path: Path) -> None:
    env = {"SEND_REASONING_EFFORT": "off", "READ_TIMEOUT": "1.5"}
    settings = load_settings(["--env-file", str(tmp_path / "none")], env)
    assert settings.send_reasoning_effort is False and settings.read_timeout == 1.5
    with pytest.raises(SystemExit, match="PORT='eighty' is not a valid int"):
        load_settings(["--env-file", str(tmp_path / "none")], {"PORT": "eighty"})


def test_env_example_lists_every_setting_with_its_default() -> None:
    listed = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    defaults = Settings()
    assert set(listed) == {spec.name.upper() for spec in SETTINGS}
    for spec in SETTINGS:
        default = getattr(defaults, spec.name)
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert listed[spec.name.upper()] == shown, spec.name


def test_help_explains_every_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "proxy", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    for flag in ("--host", "--port", "--upstream", "--model", "--api-key"):
        assert flag in out


def test_starts_without_an_upstream_and_says_what_to_set(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "--port", "0",
                             "--env-file", str(tmp_path / "none")],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 20
        lines: list[str] = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "listening" in line or not line:
                break
        assert proc.poll() is None, "".join(lines)  # still running, not crashed
        text = "".join(lines)
        assert "No upstream is configured" in text and "--upstream" in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
