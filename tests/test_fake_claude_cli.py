"""The fake Claude Code CLI speaks what the real one was recorded saying: the same line
kinds in the same order, the same failures and exit statuses, the same command-line
checks; its modes misbehave as documented; it records what it was given."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.canonical import Collector
from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.request_render import cli_arguments, render_input
from proxy.dialects.claude_code.stream_decode import ClaudeCodeStreamDecoder
from proxy.errors import ProxyError
from proxy.ndjson import NDJSONDecoder
from tests.fixtures.claude_code_cli.record import SIMPLE
from tests.support import end_child, fixture

FAKE = str(Path(__file__).parent / "fakes" / "fake-claude")
KEY = {"ANTHROPIC_API_KEY": "sk-ant-test"}


def run(stdin: bytes, env: dict[str, str] | None = None, args: list[str] | None = None,
        prompt: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    if prompt is not None:
        stdin = render_input(_request(prompt), model="sonnet").stdin
    full_env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **(env or {})}
    return subprocess.run([FAKE, *(cli_arguments() if args is None else args)], input=stdin,
                          capture_output=True, env=full_env, timeout=timeout, check=False)


def _request(prompt: str) -> Any:
    from proxy.canonical import Message, Request, TextPart
    return Request(model="sonnet", messages=(Message("user", (TextPart(prompt),)),))


def shape(raw: bytes) -> list[str]:
    """Each line's kind: type, subtype or event type; control answers by request id; a run
    of the same kind once (deltas come in as many pieces as the answer has). System lines
    other than init and status are left out (thinking_tokens and the like)."""
    out = []
    for line in raw.splitlines():
        data = json.loads(line)
        kind = data["type"]
        if kind == "stream_event":
            kind += "/" + data["event"]["type"]
        elif kind == "system":
            if data["subtype"] not in ("init", "status"):
                continue
            kind += "/" + data["subtype"]
        elif kind == "control_response":
            kind += "/" + data["response"]["request_id"]
        elif kind == "assistant" and data.get("is_api_error_message"):
            kind += "/error:" + data["error"]
        if not out or out[-1] != kind:
            out.append(kind)
    return out


def decoded(raw: bytes) -> tuple[Any, ProxyError | None]:
    decoder = ClaudeCodeStreamDecoder(message_id="m", model="c", input_tokens=1,
                                      clock=time.time)
    framing = NDJSONDecoder()
    collector = Collector()
    try:
        collector.feed(decoder.feed(framing.frames(raw)))
        collector.feed(decoder.finish(truncated=framing.truncated))
    except ProxyError as error:
        return collector.message, error
    return collector.message, None


STDIN = render_input(SIMPLE, model="sonnet").stdin


@pytest.mark.parametrize(("fixture_name", "env", "partial"), [
    ("text", KEY, True), ("text_no_partial", KEY, False),
    ("not_logged_in", {}, True),
    ("error_400", {**KEY, "FAKE_CLAUDE_MODE": "error"}, True),
    ("rate_limit_rejected", {"CLAUDE_CODE_OAUTH_TOKEN": "t", "FAKE_CLAUDE_MODE": "rate_limit"},
     True),
    ("abandoned_after_text", {**KEY, "FAKE_CLAUDE_MODE": "abandon"}, True),
    ("thinking", {**KEY, "FAKE_CLAUDE_MODE": "thinking"}, True),
])
def test_the_fake_says_what_the_real_cli_said(fixture_name: str, env: dict[str, str],
                                              partial: bool) -> None:
    args = cli_arguments()
    if not partial:
        args.remove("--include-partial-messages")
    done = run(STDIN, env, args)
    real = fixture(f"claude_code_cli/{fixture_name}.jsonl")
    assert shape(done.stdout) == shape(real), done.stderr
    expected_exit = json.loads(fixture("claude_code_cli/manifest.json"))[fixture_name]["exit"]
    assert done.returncode == expected_exit
    fake_message, fake_error = decoded(done.stdout)
    real_message, real_error = decoded(real)
    assert type(fake_error) is type(real_error)
    if real_error is not None:
        assert (fake_error.status, fake_error.kind) == (real_error.status, real_error.kind)
    assert [b.kind for b in fake_message.blocks] == [b.kind for b in real_message.blocks]


def test_the_default_answer_echoes_the_prompt_in_several_deltas() -> None:
    done = run(b"", KEY, prompt="What is two plus two?")
    message, error = decoded(done.stdout)
    assert error is None and message.stop_reason == "end_turn"
    assert [b.text for b in message.blocks] == ["You said: What is two plus two?"]
    deltas = [line for line in done.stdout.splitlines() if b'"text_delta"' in line]
    assert len(deltas) > 2


def test_the_reply_and_the_model_are_what_they_were_set_to() -> None:
    stdin = render_input(SIMPLE, model="haiku").stdin
    done = run(stdin, {**KEY, "FAKE_CLAUDE_REPLY": "Fixed answer."})
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert control.answer_to(lines[1], control.MODEL_ID) == {
        "subtype": "success", "request_id": control.MODEL_ID,
        "response": {"model": "claude-haiku-5-5"}}
    assert decoded(done.stdout)[0].blocks[0].text == "Fixed answer."


def test_a_model_it_does_not_know_is_refused_like_the_real_one() -> None:
    done = run(render_input(SIMPLE, model="xyz-model").stdin, KEY)
    _, error = decoded(done.stdout)
    real_shape = shape(fixture("claude_code_cli/model_refused.jsonl"))
    assert shape(done.stdout) == real_shape
    assert error is not None and error.status == 404


def test_the_mode_can_come_from_the_prompt() -> None:
    done = run(b"", KEY, prompt="please fake:error now")
    assert done.returncode == 1
    assert decoded(done.stdout)[1] is not None


def test_a_tool_call_is_streamed_then_refused_by_the_cli_itself() -> None:
    done = run(STDIN, {**KEY, "FAKE_CLAUDE_MODE": "tool", "FAKE_CLAUDE_TOOL": "lookup",
                       "FAKE_CLAUDE_TOOL_INPUT": '{"q": "x"}'})
    message, _ = decoded(done.stdout)
    assert [b.text for b in message.blocks] == ["Let me check.",
                                                "That tool is not available to me."]
    decoder = ClaudeCodeStreamDecoder(message_id="m", model="c", input_tokens=1,
                                      clock=time.time, client_tools={"lookup"})
    collector = Collector()
    collector.feed(decoder.feed(NDJSONDecoder().frames(done.stdout)))
    assert [(b.kind, b.tool_name, b.tool_input) for b in collector.message.blocks] == [
        ("text", "", {}), ("tool_use", "lookup", {"q": "x"})]
    assert collector.message.stop_reason == "tool_use"


def test_initialize_describes_the_account_as_the_real_cli_does() -> None:
    for env, fixture_name in [(KEY, "initialize_api_key"),
                              ({"CLAUDE_CODE_OAUTH_TOKEN": "t"}, "initialize_oauth_env"),
                              ({}, "initialize_none")]:
        done = run(control.initialize(), env)
        (line,) = [json.loads(x) for x in done.stdout.splitlines()]
        (real,) = [json.loads(x) for x in fixture(f"claude_code_cli/{fixture_name}.jsonl")
                   .splitlines()]
        account = control.answer_to(line, control.INIT_ID)["response"]["account"]
        assert account == control.answer_to(real, control.INIT_ID)["response"]["account"]


def test_a_stored_login_counts_as_logged_in(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / ".credentials.json").write_text("{}")
    done = run(STDIN, {"HOME": str(tmp_path)})
    assert done.returncode == 0 and decoded(done.stdout)[1] is None


def test_the_ready_probe_alone_is_answered_and_it_exits_at_the_end_of_stdin() -> None:
    done = run(control.PROBE, KEY)
    assert done.stdout == fixture("claude_code_cli/ready_probe.jsonl")
    assert done.returncode == 0


def test_command_line_errors_are_the_real_ones() -> None:
    done = run(b"", KEY, ["-p", "--bogus-flag"])
    assert (done.returncode, done.stderr) == (1, b"error: unknown option '--bogus-flag'\n")
    done = run(b"", KEY, ["-p", "--output-format", "stream-json"])
    assert done.returncode == 1
    assert done.stderr == b"Error: When using --print, --output-format=stream-json requires --verbose\n"
    assert run(b"", {}, ["--version"]).stdout == b"2.1.330 (Claude Code)\n"


def test_crash_exits_non_zero_mid_stream_with_a_stack_trace() -> None:
    done = run(STDIN, {**KEY, "FAKE_CLAUDE_MODE": "crash", "FAKE_CLAUDE_EXIT": "3"})
    assert done.returncode == 3 and b"TypeError" in done.stderr
    message, error = decoded(done.stdout)
    assert error is not None and "before its result line" in error.message
    assert message.blocks and message.blocks[0].kind == "text"


def test_overloaded_reports_a_retry_then_a_529() -> None:
    done = run(STDIN, {**KEY, "FAKE_CLAUDE_MODE": "overloaded"})
    _, error = decoded(done.stdout)
    assert error is not None and error.status == 529 and done.returncode == 1


@pytest.mark.parametrize("mode", ["hang", "hang_mid", "hang_start"])
def test_hanging_modes_say_nothing_more(mode: str) -> None:
    proc = subprocess.Popen([FAKE, *cli_arguments()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env={"PATH": os.environ["PATH"], **KEY,
                                                         "FAKE_CLAUDE_MODE": mode})
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(STDIN)
        proc.stdin.close()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)  # a working fake ends at once: its stdin is closed
    finally:
        proc.kill()
        out = proc.stdout.read() if proc.stdout else b""
        end_child(proc, kill=True)
    assert b'"type":"result"' not in out
    if mode == "hang_start":
        assert out == b""


def test_ignore_term_survives_sigterm_but_not_sigkill() -> None:
    proc = subprocess.Popen([FAKE, *cli_arguments()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env={"PATH": os.environ["PATH"], **KEY,
                                                         "FAKE_CLAUDE_MODE": "ignore_term"})
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(control.PROBE)
    proc.stdin.flush()
    proc.stdout.readline()  # ready: the signal handler is in place
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    assert end_child(proc, kill=True) == -signal.SIGKILL


def test_it_records_argv_and_stdin_when_asked(tmp_path: Path) -> None:
    done = run(STDIN, {**KEY, "FAKE_CLAUDE_RECORD": str(tmp_path)})
    assert done.returncode == 0
    (path,) = tmp_path.iterdir()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[0]["argv"] == cli_arguments()
    assert entries[0]["env"]["ANTHROPIC_API_KEY"] == "sk-ant-test"
    assert [e["stdin"] for e in entries[1:]] == [json.loads(x) for x in STDIN.splitlines()]
