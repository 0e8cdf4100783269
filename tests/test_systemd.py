"""The systemd unit (scripts/llm-dialect-proxy.service): its hardening, that its ExecStart
starts the proxy (run for real here, from this venv), and `systemd-analyze verify` when the
tool is installed. docs/systemd.md and scripts/install-service install it."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from proxy import workers
from proxy.config import Settings

ROOT = Path(__file__).resolve().parents[1]
UNIT_FILE = ROOT / "scripts" / "llm-dialect-proxy.service"
INSTALL_SCRIPT = ROOT / "scripts" / "install-service"
DOCS = ROOT / "docs" / "systemd.md"
ENV_EXAMPLE = ROOT / ".env.example"

VENV_BIN = "/opt/llm-dialect-proxy/.venv/bin/"
ENV_FILE = "/etc/llm-dialect-proxy/env"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: sections of keys, each with every value it was
    given in order (systemd allows repeated keys); comments and continuations handled."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


UNIT = parse_unit(UNIT_FILE.read_text(encoding="utf-8"))


def setting(section: str, key: str) -> str:
    """The value in effect: the last one given (an empty one resets, as in systemd)."""
    values = UNIT.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is missing from {UNIT_FILE.name}"
    return values[-1]


def exec_start() -> list[str]:
    return shlex.split(setting("Service", "ExecStart"))


# --- the unit's settings ------------------------------------------------------------------

HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "UMask": "0077",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
}


@pytest.mark.parametrize(("key", "expected"), sorted(HARDENING.items()))
def test_unit_sets(key: str, expected: str) -> None:
    assert setting("Service", key) == expected


def test_unit_filters_system_calls_and_socket_families() -> None:
    assert "@system-service" in UNIT["Service"]["SystemCallFilter"][0].split()
    assert set(setting("Service", "RestrictAddressFamilies").split()) == {
        "AF_INET", "AF_INET6", "AF_UNIX"}


def test_unit_reads_its_secrets_from_a_required_environment_file() -> None:
    values = UNIT["Service"]["EnvironmentFile"]
    # No "-" prefix: a missing file must stop the start, not start the proxy keyless.
    assert values == [ENV_FILE]


def test_unit_starts_after_the_network_and_at_boot() -> None:
    assert "network-online.target" in setting("Unit", "After").split()
    assert "network-online.target" in setting("Unit", "Wants").split()
    assert setting("Install", "WantedBy") == "multi-user.target"
    assert setting("Service", "Type") in ("exec", "simple")
    assert setting("Service", "RestartSec")


def seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def test_stop_timeout_outlasts_the_grace_period() -> None:
    # systemd sends SIGKILL after TimeoutStopSec: the proxy's own grace period for the
    # requests in flight, and the supervisor's margin before it kills a worker, end first.
    grace = Settings().grace_period + workers.KILL_MARGIN
    assert seconds(setting("Service", "TimeoutStopSec")) > grace
    # The supervisor passes SIGTERM on itself: systemd must signal the main process only.
    assert setting("Service", "KillMode") == "mixed"


def test_exec_start_is_the_console_script_in_the_opt_venv_unprivileged() -> None:
    command = setting("Service", "ExecStart")
    # No prefix: "+" or "!" would run it with full privileges, "-" would hide failures.
    assert command[0] == "/", command
    assert exec_start()[0] == VENV_BIN + "llm-dialect-proxy"


# --- ExecStart starts the proxy -------------------------------------------------------------


def local_command() -> list[str]:
    """ExecStart with /opt/llm-dialect-proxy/.venv/bin/ swapped for this venv's bin, whose
    llm-dialect-proxy script `pip install -e .` made; `python -m proxy` if there is none."""
    program, *args = exec_start()
    assert program.startswith(VENV_BIN)
    script = Path(sys.executable).parent / program.removeprefix(VENV_BIN)
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), *args]
    return [sys.executable, "-m", "proxy", *args]


def env_file_values(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= takes them (whole-line comments)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_exec_start_prints_the_usage() -> None:
    done = subprocess.run([*local_command(), "--help"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: llm-dialect-proxy")
    assert "--port" in done.stdout


def test_exec_start_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # As the service runs it: settings from the environment only (.env.example as the
    # env file, listening on a free 127.0.0.1 port), in an empty working directory.
    port = free_port()
    env = {**env_file_values(ENV_EXAMPLE), "HOST": "127.0.0.1", "PORT": str(port),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(local_command(), cwd=tmp_path, env=env,
                                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the proxy exited early:\n{log.read_text()}"
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                            timeout=2) as answer:
                    status = answer.status
                break
            time.sleep(0.1)
        assert status == 200, f"no /health answer within 20 s:\n{log.read_text()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"listening on http://127.0.0.1:{port}" in log.read_text()


# --- systemd-analyze verify -----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point it at this venv's (and the
    # EnvironmentFile at a copy of .env.example), keeping the unit's name.
    program = local_command()
    env_file = tmp_path / "env"
    shutil.copyfile(ENV_EXAMPLE, env_file)
    text = UNIT_FILE.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + shlex.join(program), text)
    text = re.sub(r"(?m)^EnvironmentFile=.*$", f"EnvironmentFile={env_file}", text)
    unit = tmp_path / UNIT_FILE.name
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Unknown keys and bad values are only warnings (exit code 0): none may name our unit.
    assert UNIT_FILE.name not in output, output


# --- the install script and the docs agree with the unit --------------------------------------


def test_install_script_matches_the_unit() -> None:
    script = INSTALL_SCRIPT.read_text(encoding="utf-8")
    prefix = re.search(r"(?m)^PREFIX=(\S+)", script)
    conf_dir = re.search(r"(?m)^CONF_DIR=(\S+)", script)
    assert prefix and conf_dir
    assert prefix[1] + "/.venv/bin/llm-dialect-proxy" == exec_start()[0]
    assert conf_dir[1] + "/env" == ENV_FILE
    assert re.search(r"(?m)^ENV_FILE=\$CONF_DIR/env\b", script)
    subprocess.run(["bash", "-n", str(INSTALL_SCRIPT)], check=True, timeout=30)


def test_install_script_refuses_to_run_unless_root(tmp_path: Path) -> None:
    # A stand-in `id` says uid 1000; the extra argument would stop it too, should the root
    # check ever fail: this must never install anything.
    fake_id = tmp_path / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run(["bash", str(INSTALL_SCRIPT), "--refuse"], capture_output=True,
                          text=True, env=env, timeout=30, check=False)
    assert done.returncode == 1
    assert "must run as root" in done.stderr


def test_docs_name_the_units_paths() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert exec_start()[0] in docs
    assert ENV_FILE in docs
    assert "scripts/llm-dialect-proxy.service" in docs
    assert "systemctl enable --now llm-dialect-proxy" in docs
