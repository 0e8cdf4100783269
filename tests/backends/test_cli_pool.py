"""The warm pool of CLI processes, with the fake CLI as a real child process: filled ahead
of demand, one request per process, replacements for taken, dead, hung and stale ones, a
bounded queue, cancellation and close that leave no process behind, and the clear 503s of
a CLI that is missing or not logged in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.backends.cli_pool import CLIPool, PoolBusy
from proxy.backends.cli_process import INSTALL_HINT, CLIProcess, check_cli
from proxy.canonical import Collector, Message, Request, TextPart
from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.failures import LOGIN_HINT, exit_error
from proxy.dialects.claude_code.request_render import cli_arguments, render_input
from proxy.dialects.claude_code.stream_decode import ClaudeCodeStreamDecoder
from proxy.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeout
from proxy.ndjson import NDJSONDecoder

FAKE = str(Path(__file__).parents[1] / "fakes" / "fake-claude")
COMMAND = [FAKE, *cli_arguments()]


@pytest.fixture
def record(tmp_path: Path) -> Path:
    folder = tmp_path / "record"
    folder.mkdir()
    return folder


def environment(tmp_path: Path, record: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANTHROPIC_API_KEY": "sk-test",
            "FAKE_CLAUDE_RECORD": str(record), **extra}


@pytest.fixture
async def make_pool(tmp_path: Path, record: Path) -> AsyncIterator[Callable[..., CLIPool]]:
    pools: list[CLIPool] = []

    def make(*, env: dict[str, str] | None = None, command: list[str] | None = None,
             **kwargs: Any) -> CLIPool:
        pool = CLIPool(command or COMMAND, env=env or environment(tmp_path, record), **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


def request(text: str) -> bytes:
    req = Request(model="sonnet", messages=(Message("user", (TextPart(text),)),))
    return render_input(req, model="sonnet").stdin


async def answer(process: CLIProcess, text: str) -> Collector:
    """One request through a process, as the backend will drive it."""
    await process.send(request(text))
    framing, collector = NDJSONDecoder(), Collector()
    decoder = ClaudeCodeStreamDecoder(message_id="m", model="c", input_tokens=1,
                                      clock=lambda: 0.0)
    while not decoder.done:
        chunk = await process.read()
        if not chunk:
            if not decoder.done:
                raise exit_error(await process.exit_status(), process.stderr_tail)
            break
        collector.feed(decoder.feed(framing.frames(chunk)))
    return collector


def recorded(record: Path) -> dict[int, list[dict[str, Any]]]:
    """pid -> what the fake CLI with that pid recorded (argv first, then stdin lines)."""
    return {int(path.stem): [json.loads(line) for line in path.read_text().splitlines()]
            for path in record.iterdir()}


def children() -> set[int]:
    """This test process's living children, read from /proc (Linux)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z":
            found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait for a state (not a time): a bound only so a broken pool fails, not hangs."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.02)


def ready_pids(pool: CLIPool) -> set[int]:
    return {p.pid for p in pool._ready}  # the test looks, it does not touch


# ------------------------------------------------------------------ fill and take


async def test_the_pool_fills_ahead_of_demand_with_probed_processes(
        make_pool: Callable[..., CLIPool], record: Path) -> None:
    pool = make_pool(size=2, check_login=False)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    status = pool.status()
    assert (status.ready, status.busy, status.problem) == (2, 0, None)
    seen = recorded(record)
    assert set(seen) == ready_pids(pool)
    for entries in seen.values():  # started, probed, and given nothing else yet
        assert entries[0]["argv"] == cli_arguments()
        assert [e["stdin"] for e in entries[1:]] == [json.loads(control.PROBE)]
        assert Path(entries[0]["cwd"]).is_dir() and not os.listdir(entries[0]["cwd"])


async def test_a_request_takes_a_ready_process_and_a_replacement_starts(
        make_pool: Callable[..., CLIPool], record: Path) -> None:
    pool = make_pool(size=2, check_login=False)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    before = ready_pids(pool)
    async with pool.process() as process:
        assert process.pid in before
        assert pool.status().busy == 1
        collected = await answer(process, "hello pool")
        await asyncio.wait_for(pool.filled(), 30)  # refilled while the request runs
    assert [b.text for b in collected.message.blocks] == ["You said: hello pool"]
    assert process.returncode is not None and gone(process.pid)  # one request, then gone
    assert len(ready_pids(pool) - before) == 1 and pool.status().busy == 0


async def test_no_process_serves_two_requests_so_no_context_crosses(
        make_pool: Callable[..., CLIPool], record: Path) -> None:
    pool = make_pool(size=1, check_login=False)
    await pool.start()
    pids = []
    for text in ("first secret", "second question"):
        async with pool.process() as process:
            pids.append(process.pid)
            collected = await answer(process, text)
            assert [b.text for b in collected.message.blocks] == [f"You said: {text}"]
    assert pids[0] != pids[1]
    seen = recorded(record)
    assert "first secret" not in json.dumps(seen[pids[1]])
    assert "second question" not in json.dumps(seen[pids[0]])


async def test_the_environment_reaches_the_children(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path) -> None:
    pool = make_pool(size=1, check_login=False,
                     env=environment(tmp_path, record, CLAUDE_CODE_OAUTH_TOKEN="tok"))
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    (entries,) = recorded(record).values()
    assert entries[0]["env"]["CLAUDE_CODE_OAUTH_TOKEN"] == "tok"
    assert entries[0]["env"]["HOME"] == str(tmp_path)


# ------------------------------------------------------------- dying and hanging


async def test_an_idle_process_that_dies_is_replaced(
        make_pool: Callable[..., CLIPool]) -> None:
    pool = make_pool(size=2, check_login=False)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    victim = next(iter(ready_pids(pool)))
    os.kill(victim, signal.SIGKILL)
    await until(lambda: victim not in ready_pids(pool) and len(ready_pids(pool)) == 2)
    async with pool.process() as process:
        assert process.pid != victim


async def test_a_process_idle_too_long_is_replaced(make_pool: Callable[..., CLIPool]) -> None:
    pool = make_pool(size=1, check_login=False, max_idle=0.3)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    (first,) = ready_pids(pool)
    await until(lambda: bool(ready_pids(pool)) and first not in ready_pids(pool))
    assert gone(first)


async def test_a_crash_mid_answer_is_an_error_naming_the_exit_and_stderr(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path) -> None:
    pool = make_pool(size=1, check_login=False,
                     env=environment(tmp_path, record, FAKE_CLAUDE_MODE="crash"))
    await pool.start()
    async with pool.process() as process:
        with pytest.raises(UpstreamProtocolError) as caught:
            await answer(process, "hi")
    assert "exited with status 1" in caught.value.message
    assert "TypeError" in caught.value.message
    await asyncio.wait_for(pool.filled(), 30)


async def test_silence_for_the_timeout_stops_the_child_and_fails_the_request(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path) -> None:
    pool = make_pool(size=1, check_login=False, silence_timeout=0.5,
                     env=environment(tmp_path, record, FAKE_CLAUDE_MODE="hang_mid"))
    await pool.start()
    async with pool.process() as process:
        with pytest.raises(UpstreamTimeout) as caught:
            await answer(process, "hi")
        assert process.returncode is not None  # stopped already, before the block ends
    assert "CLAUDE_TIMEOUT" in caught.value.message and caught.value.status == 504


async def test_a_start_that_hangs_is_killed_and_then_requests_fail_at_once(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path) -> None:
    before = children()
    pool = make_pool(size=1, check_login=False, start_timeout=0.3,
                     env=environment(tmp_path, record, FAKE_CLAUDE_MODE="hang_start"))
    await pool.start()
    await until(lambda: pool.status().problem is not None)  # after three hung starts
    with pytest.raises(UpstreamTimeout, match="not ready within"):
        async with pool.process():
            pass
    assert len(children() - before) <= 1  # each hung start was killed; one may be trying


# ------------------------------------------------------------ queue and cancel


async def test_requests_beyond_the_pool_wait_then_get_503_with_retry_after(
        make_pool: Callable[..., CLIPool]) -> None:
    pool = make_pool(size=1, max_busy=1, max_waiting=1, wait_timeout=30, check_login=False)
    await pool.start()
    holder = pool.process()
    first = await holder.__aenter__()
    waiter = asyncio.ensure_future(pool.process().__aenter__())
    await until(lambda: pool.status().waiting == 1)
    with pytest.raises(PoolBusy) as caught:  # the queue is full: at once
        async with pool.process():
            pass
    assert (caught.value.status, caught.value.retry_after) == (503, "5")
    assert "1 busy" in caught.value.message and "POOL_SIZE is 1" in caught.value.message
    await holder.__aexit__(None, None, None)  # the first request ends: the waiter goes on
    second = await asyncio.wait_for(waiter, 30)
    assert second.pid != first.pid
    await second.stop()


async def test_a_wait_longer_than_the_queue_allows_is_a_503(
        make_pool: Callable[..., CLIPool]) -> None:
    pool = make_pool(size=1, max_busy=1, wait_timeout=0.2, check_login=False)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    async with pool.process():
        with pytest.raises(PoolBusy) as caught:
            async with pool.process():
                pass
    assert caught.value.retry_after == "5"


@pytest.mark.parametrize("mode", ["hang", "ignore_term"])
async def test_a_cancelled_request_stops_its_child(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path, mode: str) -> None:
    env = environment(tmp_path, record, FAKE_CLAUDE_MODE=mode, FAKE_CLAUDE_DELTA_SECONDS="30")
    pool = make_pool(size=1, check_login=False, env=env)
    await pool.start()
    started: asyncio.Future[CLIProcess] = asyncio.get_running_loop().create_future()

    async def client() -> None:
        async with pool.process() as process:
            started.set_result(process)
            await answer(process, "never finishes")

    task = asyncio.ensure_future(client())
    process = await asyncio.wait_for(started, 30)
    await until(lambda: len(recorded(record).get(process.pid, [])) > 3)  # it has the request
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process.returncode is not None and gone(process.pid)
    if mode == "ignore_term":
        assert process.returncode == -signal.SIGKILL  # SIGTERM was not enough


async def test_close_stops_every_child_ready_busy_or_starting(
        make_pool: Callable[..., CLIPool], record: Path) -> None:
    before = children()
    pool = make_pool(size=2, check_login=False)
    await pool.start()
    await asyncio.wait_for(pool.filled(), 30)
    holder = pool.process()
    await holder.__aenter__()  # one busy, its replacement starting
    await until(lambda: len(children() - before) == 3)
    cwd = recorded(record)[next(iter(recorded(record)))][0]["cwd"]
    await pool.close()
    assert children() - before == set()
    assert not Path(cwd).exists()
    with pytest.raises(PoolBusy, match="shut down"):
        async with pool.process():
            pass


# ------------------------------------------------------- missing, not logged in


async def test_a_missing_cli_fails_requests_at_once_saying_how_to_install(
        make_pool: Callable[..., CLIPool], tmp_path: Path) -> None:
    pool = make_pool(size=1, command=[str(tmp_path / "no-such-claude"), "-p"])
    await pool.start()
    with pytest.raises(UpstreamError) as caught:
        async with pool.process():
            pass
    assert caught.value.status == 503 and INSTALL_HINT in caught.value.message
    assert pool.status().problem == caught.value.message
    with pytest.raises(UpstreamError, match="cannot be started"):
        await check_cli([str(tmp_path / "no-such-claude")], {"PATH": os.environ["PATH"]})


async def test_not_logged_in_is_a_503_saying_what_to_run_until_a_login(
        make_pool: Callable[..., CLIPool], tmp_path: Path, record: Path) -> None:
    env = environment(tmp_path, record)
    del env["ANTHROPIC_API_KEY"]
    pool = make_pool(size=1, env=env, login_recheck=0.0)
    await pool.start()
    await until(lambda: pool.status().problem is not None)
    with pytest.raises(UpstreamError) as caught:
        async with pool.process():
            pass
    assert caught.value.status == 503 and caught.value.message == LOGIN_HINT
    assert "claude login" in LOGIN_HINT and "claude setup-token" in LOGIN_HINT
    (tmp_path / ".claude").mkdir()  # `claude login` stores its credentials here
    (tmp_path / ".claude" / ".credentials.json").write_text("{}")
    with pytest.raises(UpstreamError):  # this request starts a new check
        async with pool.process():
            pass
    await until(lambda: pool.status().problem is None)
    async with pool.process() as process:
        collected = await answer(process, "logged in now")
    assert [b.text for b in collected.message.blocks] == ["You said: logged in now"]


async def test_the_cli_check_reports_version_login_and_models(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANTHROPIC_API_KEY": "k"}
    status = await check_cli(COMMAND, env)
    assert status.version == "2.1.330" and status.logged_in is True
    assert [m["value"] for m in status.models][1:] == ["opus", "fable", "sonnet", "haiku"]
    del env["ANTHROPIC_API_KEY"]
    assert (await check_cli(COMMAND, env)).logged_in is False


# ------------------------------------------------------------- the real CLI


def _real_claude() -> str | None:
    import shutil
    repo = Path(__file__).resolve().parents[2]
    for path in (os.environ.get("CLAUDE_CODE_BIN"), str(repo / ".cc/node_modules/.bin/claude"),
                 shutil.which("claude")):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.mark.skipif(_real_claude() is None, reason="no Claude Code CLI (set CLAUDE_CODE_BIN)")
async def test_the_real_cli_is_probed_ready_and_streams_through_the_pool(tmp_path: Path) -> None:
    """The real CLI, offline against the fake Anthropic upstream: the probe works on it, a
    request's system prompt and model reach the API, the text streams in several deltas,
    and two requests (two processes) do not see each other."""
    from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, Stream, text_stream

    upstream = FakeAnthropicUpstream(Stream(text_stream(["One", " two", " three."])))
    base = await upstream.start()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANTHROPIC_BASE_URL": base,
           "ANTHROPIC_API_KEY": "sk-ant-test", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    pool = CLIPool([str(_real_claude()), *cli_arguments()], env=env, size=2)
    try:
        await pool.start()
        await asyncio.wait_for(pool.filled(), 60)
        for secret in ("first-conversation", "second-conversation"):
            async with pool.process() as process:
                req = Request(model="haiku", system=(f"System for {secret}.",),
                              messages=(Message("user", (TextPart(f"Hello from {secret}"),)),))
                await process.send(render_input(req, model="haiku").stdin)
                framing = NDJSONDecoder()
                decoder = ClaudeCodeStreamDecoder(message_id="m", model="c", input_tokens=1,
                                                  clock=lambda: 0.0)
                events = []
                while not decoder.done and (chunk := await process.read()):
                    events += decoder.feed(framing.frames(chunk))
        await until(lambda: pool.cli is not None)
        assert pool.cli is not None and pool.cli.logged_in is True
        assert pool.cli.version.startswith("2.")
    finally:
        await pool.close()
        await upstream.stop()
    deltas = [e.text for e in events if type(e).__name__ == "TextDelta"]
    assert deltas == ["One", " two", " three."]
    first, second = (r["body"] for r in upstream.requests)
    assert first["model"] == second["model"] == "claude-haiku-5-5"
    assert first["system"][-1]["text"] == "System for first-conversation."
    assert "first-conversation" not in json.dumps(second)
    assert first["messages"][0]["content"] == [{"type": "text",
                                                "text": "Hello from first-conversation"}]
