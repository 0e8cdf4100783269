"""What the README and docs say, checked: every command they show is run here as written,
every link leads somewhere inside the repository, and the claims a new user tripped on.

Commands run from a copy of the checkout (``tests/commands.py``), exactly as the README
shows them, but: an upstream it names (``https://api.deepseek.com/v1``,
``https://api.anthropic.com``) is a local fake, and the proxy's port, 3578 in the README,
is a free one (through ``PORT``, or ``PROXY_URL`` for the client: the commands are left as
written). ``bash scripts/test`` is the command CI runs (``.ci/run``), which runs this
suite: checked to be so, not run from inside itself. The commands of docs/clients.md run
in tests/e2e/test_clients.py, those of docs/migrating.md in tests/test_migrating_doc.py;
docs/systemd.md's need root and systemd (tests/test_systemd.py runs the unit's command).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from proxy.config import load_settings
from tests.commands import (
    ANSWER,
    REPO,
    AnthropicServer,
    OpenAIServer,
    block,
    checkout,
    clean_env,
    free_port,
    markers,
    run,
    serving,
    start,
)
from tests.fakes.openai_upstream import (
    FakeOpenAIUpstream,
    JSONResponse,
    Stream,
    chat_completion,
    text_stream,
)

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
LISTENING = r"llm-dialect-proxy listening on http://127\.0\.0\.1:(\d+)"


# --- every command block is run, every link resolves --------------------------------------


def test_every_command_block_of_the_readme_is_marked_and_run() -> None:
    text = README.read_text(encoding="utf-8")
    fences = re.findall(r"(?:<!-- test: ([\w-]+) -->\s*)?```(\w*)\n", text)
    opening = [(name, lang) for name, lang in fences[::2]]  # every other fence opens one
    commands = [name for name, lang in opening if lang in ("sh", "bash", "python")]
    assert all(commands), f"a command block of the README has no test marker: {opening}"
    source = Path(__file__).read_text(encoding="utf-8")
    assert sorted(markers(README, "test")) == sorted(commands)
    missing = [name for name in commands if f'"{name}"' not in source]
    assert not missing, f"README blocks nobody runs: {missing}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_links_lead_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto:
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{doc.name}: {target}"
    outside = re.findall(r"`(\.\./[^`]*)`", text)
    # ../codingplanproxy/.env and the like in docs/migrating.md are the user's own
    # checkouts next to this one, in commands; nothing else points out of the repository.
    assert all(re.match(r"\.\./(codingplanproxy|claude-proxy|bbd2api)/", o)
               for o in outside), outside


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["bash scripts/test"]
    assert "bash scripts/test" in block(README, "test", "start")


# --- the README's commands, run as written -------------------------------------------------


async def test_start(tmp_path: Path) -> None:
    """``bash scripts/serve --upstream https://api.deepseek.com/v1 --model deepseek-chat``,
    DeepSeek being a fake here."""
    (line,) = [ln for ln in block(README, "test", "start").splitlines()
               if ln.startswith("bash scripts/serve")]
    root, port = checkout(tmp_path), free_port()
    fake = OpenAIServer()
    async with serving(fake) as upstream:
        script = line.replace("https://api.deepseek.com", upstream)
        proxy = await start(script, root, clean_env(PORT=str(port)))
        try:
            await proxy.wait_for(LISTENING)
            async with aiohttp.ClientSession() as session, session.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                    json={"model": "claude-x", "max_tokens": 9,
                          "messages": [{"role": "user", "content": "hi"}]}) as answer:
                body = await answer.json()
        finally:
            await proxy.stop()
    assert body["content"][0]["text"] == ANSWER, proxy.output
    assert fake.requests[-1]["body"]["model"] == "deepseek-chat"
    assert f"forwarding to {upstream}/v1 (openai) as model deepseek-chat" in proxy.output


async def test_claude_models_from_openai_clients(tmp_path: Path) -> None:
    """The serve command (the Anthropic API being a fake) and the openai snippet."""
    root, port = checkout(tmp_path), free_port()
    fake = AnthropicServer()
    async with serving(fake) as upstream:
        script = block(README, "test", "claude-models-serve").replace(
            "https://api.anthropic.com", upstream)
        proxy = await start(script, root, clean_env(PORT=str(port)))
        try:
            await proxy.wait_for(LISTENING)
            snippet = block(README, "test", "claude-models-openai")
            assert "http://127.0.0.1:3578/v1" in snippet
            code = snippet.replace("127.0.0.1:3578", f"127.0.0.1:{port}")
            names: dict[str, Any] = {}
            await asyncio.to_thread(exec, code, names)
        finally:
            await proxy.stop()
    sent = fake.requests[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-..."
    assert sent["body"]["model"] == "claude-sonnet-5-5"
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


async def test_backboard_serve(tmp_path: Path) -> None:
    """The backboard command, backboard.io being the fake (tests/fakes/backboard_upstream)."""
    from tests.fakes.backboard_upstream import FakeBackboard
    root, port = checkout(tmp_path), free_port()
    fake = FakeBackboard(["bb-key-1", "bb-key-2"])
    await fake.start()
    try:
        script = block(README, "test", "backboard-serve").replace(
            "https://app.backboard.io/api", fake.base_url)
        proxy = await start(script, root, clean_env(PORT=str(port)))
        try:
            await proxy.wait_for(LISTENING)
            async with aiohttp.ClientSession() as session, session.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": [
                        {"role": "user", "content": "say: from the README"}]}) as answer:
                body = await answer.json()
        finally:
            await proxy.stop()
    finally:
        await fake.stop()
    assert body["choices"][0]["message"]["content"] == "from the README", proxy.output
    assert "bb-key-1" not in proxy.output


async def test_claude_code_serve(tmp_path: Path) -> None:
    """The Claude Code CLI command; the CLI being the fake one (tests/fakes/fake-claude),
    found through CLAUDE_CLI as a user's would be on the PATH."""
    root, port = checkout(tmp_path), free_port()
    env = clean_env(PORT=str(port), CLAUDE_CLI=str(REPO / "tests" / "fakes" / "fake-claude"),
                    HOME=str(tmp_path), ANTHROPIC_API_KEY="sk-test",
                    FAKE_CLAUDE_REPLY="from the CLI")
    proxy = await start(block(README, "test", "claude-code-serve"), root, env)
    try:
        await proxy.wait_for(LISTENING)
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}
        ) as answer:
            body = await answer.json()
    finally:
        await proxy.stop()
    assert body["choices"][0]["message"]["content"] == "from the CLI", proxy.output


async def test_client(tmp_path: Path, proxy_url: str, upstream: FakeOpenAIUpstream) -> None:
    """``bash scripts/client "…"`` with no venv active: the proxy is the test's (its
    address in PROXY_URL, the default being the local proxy on 3578)."""
    root = checkout(tmp_path)
    (line,) = block(README, "test", "client").splitlines()
    env = clean_env(PROXY_URL=proxy_url)
    assert "VIRTUAL_ENV" not in env
    code, out, err = await run(line, root, env)
    assert (code, out) == (0, "Hi!\n"), err
    assert upstream.requests[-1]["body"]["messages"][-1]["content"] == "Say hi in five words"


async def test_bench(tmp_path: Path) -> None:
    """Both lines; the second against bench's own fake upstream instead of DeepSeek."""
    root = checkout(tmp_path)
    first, second = block(README, "test", "bench").splitlines()
    code, out, err = await run(first, root, clean_env(), timeout=300)
    assert code == 0, out[-2000:] + err[-2000:]
    report = orjson.loads((root / "out.json").read_bytes())
    assert {sc["direction"] for sc in report["scenarios"]} == {
        "a2o", "o2a", "relay-openai", "relay-anthropic"}
    port = free_port()
    fake = subprocess.Popen([sys.executable, "scripts/bench_upstreams.py", str(port), "openai"],
                            cwd=root, stdin=subprocess.DEVNULL)
    try:
        await wait_port(port)
        script = second.replace("https://api.deepseek.com", f"http://127.0.0.1:{port}")
        code, out, err = await run(script, root, clean_env(), timeout=300)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    assert code == 0, out[-2000:] + err[-2000:]
    assert "latency" in out and "non-streaming" not in out


async def wait_port(port: int) -> None:
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError(f"nothing listens on {port}")


# --- what a new user tripped on -------------------------------------------------------------


async def test_metrics_need_the_proxy_key(start_proxy: Any) -> None:
    url = await start_proxy(proxy_api_key="proxy-key")
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/metrics") as refused:
            assert refused.status == 401
        async with session.get(url + "/metrics",
                               headers={"Authorization": "Bearer proxy-key"}) as answered:
            assert answered.status == 200
            assert "llm_proxy_requests_total" in await answered.text()
        async with session.get(url + "/health") as health:
            assert health.status == 200
    said = README.read_text(encoding="utf-8")
    assert "`PROXY_API_KEY` set, the scraper must send it" in said


async def test_translated_answers_name_the_asked_model_relayed_ones_the_upstreams(
        proxy_url: str, upstream: FakeOpenAIUpstream) -> None:
    # the translation streams from the upstream; the relay asks for one body
    upstream.scenario = [Stream(text_stream(["hi"])), JSONResponse(chat_completion("hi"))]
    asked = "what-the-client-asked"
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy_url + "/v1/messages", json={
                "model": asked, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
                headers={"anthropic-version": "2023-06-01"}) as translated:
            assert (await translated.json())["model"] == asked
        async with session.post(proxy_url + "/v1/chat/completions", json={
                "model": asked, "messages": [{"role": "user", "content": "x"}]}) as relayed:
            assert (await relayed.json())["model"] == "gpt-4o-mini"  # the fake upstream's
    readme = README.read_text(encoding="utf-8")
    assert "answers always name the model the client asked for" not in readme
    assert "relayed ones (same dialect both sides) come back byte for byte, so they name " \
           "the model the upstream reports" in readme
    helped = subprocess.run([sys.executable, "-m", "proxy", "--help"], capture_output=True,
                            text=True, check=True, cwd=REPO).stdout
    assert "relayed ones" in " ".join(helped.split())


async def test_an_unknown_path_is_not_an_unknown_model(proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy_url + "/v1/completions", json={}) as openai_shape:
            assert openai_shape.status == 404
            error = (await openai_shape.json())["error"]
        async with session.get(proxy_url + "/v1/nope",
                               headers={"anthropic-version": "2023-06-01"}) as anthropic_shape:
            assert (await anthropic_shape.json())["error"]["type"] == "not_found_error"
    assert (error["type"], error["code"]) == ("invalid_request_error", None)
    assert "/v1/chat/completions" in error["message"]


def test_an_empty_value_in_the_env_file_is_unset(tmp_path: Path) -> None:
    """docs/systemd.md: ``PROXY_API_KEY=`` leaves the providers file's ``ak``; a default
    copied from .env.example (``PORT=3578``) overrides its ``port``."""
    config = tmp_path / "providers.json"
    config.write_text(orjson.dumps({"ak": "file-key", "port": 8888, "providers": [
        {"base_url": "http://u", "api_key": "k", "models": [{"id": "m"}]}]}).decode())
    environment = {"PROXY_API_KEY": "", "PORT": "3578"}  # as systemd hands the env file over
    settings = load_settings(["--config", str(config), "--env-file", os.devnull], environment)
    assert (settings.proxy_api_key, settings.port) == ("file-key", 3578)
    doc = (REPO / "docs" / "systemd.md").read_text(encoding="utf-8")
    assert "empty ones included" not in doc
    assert "`PROXY_API_KEY=` leaves the file's `ak` in force" in doc


# --- scripts/setup, pyproject.toml ----------------------------------------------------------


FAKE_PYTHON = """#!/usr/bin/env bash
echo "$0 $*" >> "{log}"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && chmod +x "$3/bin/python"
fi
"""


def setup_copy(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """scripts/setup in a copy of its own, with a fake python3 that logs its calls (and
    makes a venv whose python does the same): no install ever runs."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup", "serve"):
        (root / "scripts" / name).write_bytes((REPO / "scripts" / name).read_bytes())
    (root / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    log = tmp_path / "calls.log"
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON.format(log=log))
    python.chmod(0o755)
    return root, log, clean_env(PYTHON=str(python))


def installs(log: Path) -> list[str]:
    calls = log.read_text().splitlines() if log.exists() else []
    return [c.split(" ", 1)[1] for c in calls if " -m pip install " in f" {c.split(' ', 1)[1]}"]


def test_setup_installs_once_and_serve_after_test_installs_nothing(tmp_path: Path) -> None:
    root, log, env = setup_copy(tmp_path)
    version = hashlib.sha1((root / "pyproject.toml").read_bytes()).hexdigest()[:12]
    subprocess.run(["bash", "scripts/setup"], cwd=root, env=env, check=True)
    assert installs(log) == ["-m pip install --quiet --disable-pip-version-check --upgrade pip",
                             "-m pip install --quiet --disable-pip-version-check -e ."]
    assert (root / ".venv" / f".installed-{version}").exists()
    log.unlink()
    subprocess.run(["bash", "scripts/setup"], cwd=root, env=env, check=True)
    assert installs(log) == []
    # What `bash scripts/test` leaves (its venvs for LiteLLM and the CLI stubbed), then
    # `bash scripts/serve`'s set-up, on a fresh venv: nothing to install.
    (root / ".venv" / f".installed-{version}").unlink()
    (root / ".venv" / f".installed[test,dev]-{version}").touch()
    subprocess.run(["bash", "scripts/setup"], cwd=root, env=env, check=True)
    assert installs(log) == []
    (root / "pyproject.toml").write_text("# changed\n")
    subprocess.run(["bash", "scripts/setup"], cwd=root, env=env, check=True)
    assert installs(log)[-1].endswith("-e .")


def test_the_licence_is_an_spdx_expression() -> None:
    """setuptools warns that ``project.license`` as a table is deprecated (PEP 639)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    requires = project["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77
               for r in requires), requires  # the first to read an SPDX license


def test_readme_says_what_the_tests_need() -> None:
    said = " ".join(README.read_text(encoding="utf-8").split())
    assert "about 1 GB, so it needs network access to PyPI and npm" in said
    assert "`bash scripts/serve` after `bash scripts/test` installs nothing" in said
    assert shlex.split(block(README, "test", "client"))[:2] == ["bash", "scripts/client"]


def read_fields(bullet_start: str) -> set[str]:
    """The fields docs/migrating.md says a direction reads: the names after "every
    top-level field but" in the bullet that starts with ``bullet_start``."""
    text = " ".join((REPO / "docs" / "migrating.md").read_text(encoding="utf-8").split())
    bullet = text.split(f"- **{bullet_start}")[1].split("- **")[0]
    listed = bullet.split("every top-level field but", 1)[1].split("(so", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", listed))


def test_the_dropped_fields_doc_matches_the_parsers() -> None:
    from proxy.dialects.anthropic import request_parse as anthropic_parse
    from proxy.dialects.openai import request_parse as openai_parse

    assert read_fields("Anthropic client") == set(anthropic_parse._KNOWN)
    assert read_fields("OpenAI client") == set(openai_parse._READ) - {
        "n", "logprobs", "top_logprobs", "modalities", "audio", "web_search_options"}


async def test_a_dropped_field_is_told_in_the_header(proxy_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            proxy_url + "/v1/messages", headers={"anthropic-version": "2023-06-01"},
            json={"model": "m", "max_tokens": 5, "top_k": 3,
                  "messages": [{"role": "user", "content": "x"}]}) as answer:
        assert answer.status == 200
        assert answer.headers["x-llm-proxy-dropped"] == "top_k"
