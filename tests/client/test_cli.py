"""``python -m proxy.client`` as a user runs it: a subprocess against the real proxy app,
which runs in this test's event loop on a real port."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.client.cli import Outcome, summary_lines
from proxy.client.wire import Completion, ProxyClientError
from tests.client.conftest import Target
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.openai_upstream import ErrorResponse, FakeOpenAIUpstream, JSONResponse, Stream

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXY_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def cli(*args: str, stdin: bytes = b"",
              env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI to its end; (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.client", *args, cwd=ROOT, env=env or clean_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_prompt_argument_and_default_model(upstream: FakeOpenAIUpstream,
                                                 proxy_url: str) -> None:
    status, out, err = await cli("--url", proxy_url, "hi")
    assert (status, out, err) == (0, "Hi!\n", "")
    body = upstream.requests[-1]["body"]
    assert body["messages"][-1]["content"] == "hi"
    assert body["stream"] is True


async def test_prompt_from_stdin_and_env(upstream: FakeOpenAIUpstream, proxy_url: str) -> None:
    env = clean_env(PROXY_URL=proxy_url, PROXY_MODEL="my-model")
    status, out, _ = await cli(stdin=b"what is up?\n", env=env)
    assert (status, out) == (0, "Hi!\n")
    assert upstream.requests[-1]["body"]["messages"][-1]["content"] == "what is up?"
    status, out, _ = await cli("-", stdin=b"again", env=env)
    assert (status, out) == (0, "Hi!\n")


async def test_text_is_written_as_it_arrives(upstream: FakeOpenAIUpstream,
                                             proxy_url: str) -> None:
    # The first word, then silence: it must be on stdout while the request is still open.
    upstream.scenario = Stream(fake_openai.text_stream(["Early", "never"])[:2],
                               hang_after=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.client", "--url", proxy_url, "--model", "m", "hi",
        cwd=ROOT, env=clean_env(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readexactly(5), TIMEOUT)
        assert first == b"Early"
        assert proc.returncode is None
    finally:
        proc.kill()
        await proc.wait()


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_no_stream(upstream: FakeOpenAIUpstream, proxy_url: str, dialect: str) -> None:
    if dialect == "openai":  # relayed, so the upstream is asked for JSON and answers JSON
        upstream.scenario = JSONResponse(fake_openai.chat_completion("Whole answer"))
    else:
        upstream.scenario = Stream(fake_openai.text_stream(["Whole", " answer"]))
    status, out, _ = await cli("--url", proxy_url, "--dialect", dialect, "--no-stream", "hi")
    assert (status, out) == (0, "Whole answer\n")
    assert upstream.requests[-1]["body"]["stream"] is (dialect == "anthropic")


async def test_openai_dialect_against_an_anthropic_upstream(o2a_url: str) -> None:
    status, out, _ = await cli("--url", o2a_url, "--dialect", "openai", "--summary", "hi")
    assert (status, out) == (0, "Hi!\n")


async def test_parallel_requests_and_their_summary(upstream: FakeOpenAIUpstream,
                                                   proxy_url: str) -> None:
    upstream.scenario = Stream(fake_openai.text_stream(["Hi", "!"]), delay=0.05)
    status, out, err = await cli("--url", proxy_url, "-n", "3", "--model", "m", "hi")
    assert (status, out) == (0, "Hi!\n")  # one answer's text, not three
    assert len(upstream.requests) == 3
    lines = err.splitlines()
    assert lines[0].split() == ["#", "status", "ttfb", "total", "in", "out", "chars"]
    rows = [line.split() for line in lines[1:4]]
    assert [row[:2] for row in rows] == [["1", "ok"], ["2", "ok"], ["3", "ok"]]
    assert all(row[4:] == ["11", "7", "3"] for row in rows)
    assert lines[4].startswith("3/3 ok, 0 failed, wall ")


async def test_parallel_requests_one_fails(upstream: FakeOpenAIUpstream,
                                           proxy_url: str) -> None:
    upstream.scenario = [ErrorResponse(429, fake_openai.error_body("slow down")),
                         Stream(fake_openai.text_stream(["Hi", "!"]))]
    status, out, err = await cli("--url", proxy_url, "-n", "3", "--model", "m", "hi")
    assert (status, out) == (1, "Hi!\n")
    assert "2/3 ok, 1 failed" in err
    assert "429 " in err and "slow down" in err and "Traceback" not in err


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_an_error_is_one_plain_line(upstream: FakeOpenAIUpstream, proxy_url: str,
                                          dialect: str) -> None:
    upstream.scenario = ErrorResponse(429, fake_openai.error_body("slow down"))
    status, out, err = await cli("--url", proxy_url, "--dialect", dialect, "-m", "m", "hi")
    assert (status, out) == (1, "")
    assert err.startswith("error: 429 ") and err.rstrip().endswith("slow down")
    assert len(err.splitlines()) == 1


async def test_usage_errors() -> None:
    status, _, err = await cli("--url", "http://127.0.0.1:9", stdin=b"  \n")
    assert status == 2 and err == "error: the prompt is empty (give it as an argument or on stdin)\n"
    status, _, err = await cli("--url", "http://127.0.0.1:9", "hi")
    assert status == 1 and err.startswith("error: connection_error: cannot reach the proxy")
    status, _, err = await cli("-n", "0", "hi")
    assert status == 2 and "must be at least 1" in err


async def test_no_model_anywhere(start_proxy: Any) -> None:
    url = await start_proxy()  # no upstream, no MODEL: /v1/models lists nothing
    status, _, err = await cli("--url", url, "hi")
    assert status == 2 and err.startswith("error: no model: pass --model or set PROXY_MODEL")


async def test_help() -> None:
    status, out, _ = await cli("--help")
    assert status == 0
    for words in ("--dialect {anthropic,openai}", "--no-stream", "-n N", "PROXY_URL",
                  "lowest-numbered"):
        assert words in out


async def test_stream_through_every_combination(target: Target) -> None:
    status, out, err = await cli("--url", target.url, "--dialect", target.dialect, "hi")
    assert (status, out, err) == (0, "Hi!\n", "")


def test_summary_lines() -> None:
    done = Completion("abc", "m", "stop", 3, 4, 0.01, 0.02)
    lines = summary_lines([Outcome(1, "abc", 0.02, done),
                           Outcome(2, "", 0.5, error=ProxyClientError(None, "t", "bad"))], 0.5)
    assert lines[1].split() == ["1", "ok", "0.010s", "0.020s", "3", "4", "3"]
    assert lines[2].split() == ["2", "error", "-", "0.500s", "-", "-", "0", "t:", "bad"]
    assert lines[3] == "1/2 ok, 1 failed, wall 0.500s"
