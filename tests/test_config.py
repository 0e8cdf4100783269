"""Settings precedence, .env.example completeness, and `python -m proxy` starting up."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from proxy.config import SETTINGS, Settings, load_settings
from proxy.routing import single_provider
from tests.support import end_child

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
        end_child(proc)


# --- what a new user tripped on -------------------------------------------------------------


def test_a_boolean_flag_alone_means_true(tmp_path: Path) -> None:
    none = ["--env-file", str(tmp_path / "none")]
    assert load_settings(["--claude-code-headers", *none], {}).claude_code_headers is True
    settings = load_settings(["--claude-code-headers", "false", "--replay-reasoning", *none], {})
    assert (settings.claude_code_headers, settings.replay_reasoning) == (False, True)
    assert load_settings(["--send-reasoning-effort", "off", *none], {}).send_reasoning_effort \
        is False


@pytest.mark.parametrize("url", ["api.deepseek.com/v1", "ftp://h/v1", "https:///v1"])
def test_an_upstream_without_scheme_or_host_stops_the_start(tmp_path: Path, url: str) -> None:
    with pytest.raises(SystemExit, match=r"UPSTREAM_URL must be an http:// or https:// URL "
                       r"with a host, not '.*'; did you mean https://"):
        load_settings(["--upstream", url, "--env-file", str(tmp_path / "none")], {})


def test_help_names_both_directions_and_version_is_the_packages() -> None:
    out = subprocess.run([sys.executable, "-m", "proxy", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    described = " ".join(out.split("options:")[0].split())
    for said in ("Anthropic Messages API", "OpenAI Chat Completions API",
                 "OpenAI-compatible upstream or the Anthropic API", "translated", "relayed"):
        assert said in described, said
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([sys.executable, "-m", "proxy", "--version"], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    assert done.stdout == f"llm-dialect-proxy {version}\n"


def start_proxy_process(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "proxy", *args, "--env-file",
                             str(tmp_path / "none")], cwd=tmp_path, stderr=subprocess.PIPE,
                            text=True, env={"PATH": "/usr/bin:/bin",
                                            "PYTHONPATH": str(ROOT)})


def read_until(proc: subprocess.Popen[str], word: str) -> str:
    """stderr up to the first line with ``word``, or to its end."""
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if word in line or not line:
            break
    return "".join(lines)


def test_listening_is_said_once_the_port_is_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_proxy_process(["--port", str(port)], tmp_path)
        try:
            assert proc.wait(timeout=20) == 1
            assert proc.stderr is not None
            log = proc.stderr.read()
        finally:
            end_child(proc, kill=True)
    assert "address already in use" in log and "listening" not in log, log
    port = free_port()
    proc = start_proxy_process(["--port", str(port)], tmp_path)
    try:
        log = read_until(proc, "listening on")
        assert f"listening on http://127.0.0.1:{port}" in log, log
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # bound and accepting the moment the log says so
    finally:
        end_child(proc)


def test_a_providers_file_is_named_in_the_start_up_log(tmp_path: Path) -> None:
    config = tmp_path / "providers.json"
    config.write_text(json.dumps({"providers": [
        {"name": "deepseek", "base_url": "https://user:secret@api.deepseek.com",
         "api_key": "sk-a", "models": [{"id": "ds"}, {"id": "dr"}]},
        {"name": "claude", "dialect": "anthropic", "base_url": "https://api.anthropic.com",
         "api_key": "sk-ant-b", "models": []}]}))
    proc = start_proxy_process(["--config", str(config), "--port", "0"], tmp_path)
    try:
        log = read_until(proc, "listening on")
    finally:
        end_child(proc)
    assert (f"providers file {config}: deepseek at https://***@api.deepseek.com (openai), "
            "models ds, dr") in log, log
    assert (f"providers file {config}: claude at https://api.anthropic.com (anthropic), "
            "models (none listed)") in log
    assert "forwarding to  (" not in log and "secret" not in log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
