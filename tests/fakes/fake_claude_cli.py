"""A fake Claude Code CLI: the real one's command line and stream-json (2.1.330, as recorded
in ``tests/fixtures/claude_code_cli``), answering from a script instead of a model.

Run it through ``tests/fakes/fake-claude``. Stdlib only, so it starts in tens of ms. It
takes the real CLI's options (an unknown one, or stream-json output without ``--verbose``,
fails as the real CLI does), answers the control requests (``initialize`` with models and
the account, ``mcp_status``, ``set_model``), and answers each stdin user line with one turn:
``system/init``, ``system/status``, partial messages (with ``--include-partial-messages``),
whole ``assistant`` lines, ``result``. Without credentials (``ANTHROPIC_API_KEY``,
``ANTHROPIC_AUTH_TOKEN``, ``CLAUDE_CODE_OAUTH_TOKEN``, or ``$HOME/.claude/.credentials.json``)
it is "Not logged in", as the real CLI is.

The mode comes from ``FAKE_CLAUDE_MODE``, or from ``fake:<mode>`` in the prompt's text:

    text (default)  "You said: <the prompt's last text>" in several deltas
    thinking        a thinking block, then the text
    tool            a tool_use (FAKE_CLAUDE_TOOL, FAKE_CLAUDE_TOOL_INPUT), refused by the
                    CLI as the real one refuses unknown tools, then a second call's text
    slow            waits FAKE_CLAUDE_DELAY seconds (default 2) before answering
    slow_start      waits FAKE_CLAUDE_DELAY before reading stdin at all (a slow start-up)
    hang            says nothing more once it has the prompt
    hang_start      never reads stdin, never answers (a start-up that hangs)
    hang_mid        two deltas, then nothing
    crash           two deltas, a stack trace on stderr, exit FAKE_CLAUDE_EXIT (default 1)
    error           the API error the CLI gave up on: FAKE_CLAUDE_ERROR (default the
                    recorded 400), ``is_error`` result, exit 1
    overloaded      an api_retry, then a 529 error result, exit 1
    rate_limit      a rejected subscription rate limit (resets in an hour), exit 1
    not_logged_in   "Not logged in · Please run /login", exit 1
    abandon         a delta, the stream abandoned, the non-streaming retry's whole answer
    ignore_term     like text, but SIGTERM is ignored (only SIGKILL stops it)

Other settings: ``FAKE_CLAUDE_REPLY`` (the text answered), ``FAKE_CLAUDE_STARTUP_SECONDS``
(start-up work before stdin is read, every mode), ``FAKE_CLAUDE_DELTA_SECONDS`` (between
deltas), ``FAKE_CLAUDE_RECORD`` (a folder: ``<pid>.jsonl`` gets the argv, cwd and the
relevant environment, then every stdin line, as they come).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from typing import Any

VERSION = "2.1.330 (Claude Code)"
VALUE_OPTIONS = {
    "--input-format", "--output-format", "--model", "--system-prompt", "--append-system-prompt",
    "--tools", "--allowed-tools", "--allowedTools", "--disallowed-tools", "--disallowedTools",
    "--setting-sources", "--permission-prompts", "--permission-mode", "--max-turns",
    "--session-id", "--resume", "-r", "--debug-file", "--effort", "--fallback-model",
    "--settings", "--mcp-config", "--max-budget-usd", "--add-dir", "--json-schema"}
FLAG_OPTIONS = {
    "-p", "--print", "--verbose", "--include-partial-messages", "--no-session-persistence",
    "--restricted", "--safe-mode", "--bare", "--strict-mcp-config", "--disable-slash-commands",
    "--fork-session", "-c", "--continue", "--replay-user-messages"}
ALIASES = {"opus": "claude-opus-5-5", "sonnet": "claude-sonnet-5-5",
           "haiku": "claude-haiku-5-5", "fable": "claude-fable-5-2"}
MODES = ("text", "thinking", "tool", "slow", "slow_start", "hang", "hang_start", "hang_mid",
         "crash", "error", "overloaded", "rate_limit", "not_logged_in", "abandon", "ignore_term")
DEFAULT_ERROR = "API Error: 400 system.1: cache_control blocks are limited to 4 per request"


class Fake:
    def __init__(self, options: dict[str, str | bool]) -> None:
        self.options = options
        self.model = ALIASES.get(str(options.get("--model", "opus")),
                                 str(options.get("--model", "opus")))
        self.system = str(options.get("--system-prompt", ""))
        self.session_id = str(uuid.uuid4())
        self.partial = bool(options.get("--include-partial-messages"))
        self.record = _recorder()
        self.started = False
        self.calls = 0

    # --------------------------------------------------------------------------- I/O

    def emit(self, line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def run(self) -> int:
        mode = os.environ.get("FAKE_CLAUDE_MODE", "text")
        time.sleep(_seconds("FAKE_CLAUDE_STARTUP_SECONDS", 0.0))
        if mode == "hang_start":
            _forever()
        if mode == "slow_start":
            time.sleep(_seconds("FAKE_CLAUDE_DELAY", 2.0))
        if mode == "ignore_term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        status = 0
        for raw in sys.stdin:
            if not raw.strip():
                continue
            line = json.loads(raw)
            self.record({"stdin": line})
            if line.get("type") == "control_request":
                self.control(line.get("request_id"), line.get("request") or {})
            elif line.get("type") == "user":
                status = self.turn(line.get("message") or {}, mode) or status
        return status

    # ------------------------------------------------------------------- control

    def control(self, request_id: Any, request: dict[str, Any]) -> None:
        subtype = request.get("subtype")
        if subtype == "initialize":
            if "systemPrompt" in request:
                self.system = "\n\n".join(request["systemPrompt"])
            self.answer(request_id, {"commands": [], "agents": [], "output_style": "default",
                                     "models": _models(), "account": _account(),
                                     "pid": os.getpid(), "claude_code_version": "2.1.330"})
        elif subtype == "mcp_status":
            self.answer(request_id, {"mcpServers": []})
        elif subtype == "set_model":
            wanted = str(request.get("model") or "default")
            if wanted in ALIASES or wanted.startswith("claude-"):
                self.model = ALIASES.get(wanted, wanted)
                self.answer(request_id, {"model": self.model})
            else:
                self.emit({"type": "control_response", "response": {
                    "subtype": "error", "request_id": request_id,
                    "error": f"Model '{wanted}' not found", "error_code": "not_found",
                    "model": self.model}})
        else:
            self.emit({"type": "control_response", "response": {
                "subtype": "error", "request_id": request_id,
                "error": f"Unsupported control request subtype: {subtype}",
                "error_code": "unsupported_request"}})

    def answer(self, request_id: Any, response: dict[str, Any]) -> None:
        self.emit({"type": "control_response", "response": {
            "subtype": "success", "request_id": request_id, "response": response}})

    # ---------------------------------------------------------------------- turns

    def turn(self, message: dict[str, Any], mode: str) -> int:
        prompt = _text(message.get("content"))
        mode = _mode_in(prompt) or mode
        self.system_lines()
        if mode == "hang":
            _forever()
        if not _logged_in() or mode == "not_logged_in":
            return self.failure("Not logged in · Please run /login", "authentication_failed")
        if mode == "slow":
            time.sleep(_seconds("FAKE_CLAUDE_DELAY", 2.0))
        if mode == "error":
            return self.failure(os.environ.get("FAKE_CLAUDE_ERROR", DEFAULT_ERROR),
                                "unknown", 400, "invalid_request_error")
        if mode == "overloaded":
            self.emit(self.system_line("api_retry", attempt=1, max_retries=1,
                                       retry_delay_ms=500, error_status=529,
                                       error="overloaded"))
            return self.failure("API Error: Repeated 529 Overloaded errors", "unknown", 529,
                                "overloaded_error")
        if mode == "rate_limit":
            return self.rate_limited()
        reply = os.environ.get("FAKE_CLAUDE_REPLY", f"You said: {prompt[-200:]}")
        if mode == "thinking":
            return self.answer_turn([("thinking", "Let me think about that."), ("text", reply)])
        if mode == "tool":
            return self.tool_turn()
        if mode in ("hang_mid", "crash", "abandon"):
            return self.broken(reply, mode)
        return self.answer_turn([("text", reply)])

    def system_lines(self) -> None:
        if not self.started:
            self.started = True
            self.emit(self.system_line(
                "init", cwd=os.getcwd(), tools=_tools(self.options), mcp_servers=[],
                model=self.model, permissionMode="default", apiKeySource=_key_source(),
                claude_code_version="2.1.330", output_style="default",
                served_by_anthropic=False))
        if self.partial:  # 2.1.330 says it only along with partial messages
            self.emit(self.system_line("status", status="requesting"))

    def system_line(self, subtype: str, **fields: Any) -> dict[str, Any]:
        return {"type": "system", "subtype": subtype, **fields,
                "session_id": self.session_id, "uuid": str(uuid.uuid4())}

    def answer_turn(self, blocks: list[tuple[str, str]], stop: str = "end_turn") -> int:
        self.api_call(blocks, stop)
        self.result(stop, blocks[-1][1])
        return 0

    def api_call(self, blocks: list[tuple[str, Any]], stop: str) -> str:
        """One API call's stream events and whole assistant lines; its message id."""
        self.calls += 1
        msg_id = f"msg_01FakeCli{os.getpid()}x{self.calls}"
        self.event(msg_id, {"type": "message_start", "message": self.message(msg_id, [])},
                   ttft_ms=12)
        for index, (kind, value) in enumerate(blocks):
            self.block(msg_id, index, kind, value)
        self.event(msg_id, {"type": "message_delta", "delta": {
            "stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 12}})
        self.event(msg_id, {"type": "message_stop"})
        return msg_id

    def block(self, msg_id: str, index: int, kind: str, value: Any) -> None:
        delay = _seconds("FAKE_CLAUDE_DELTA_SECONDS", 0.0)
        if kind == "tool_use":
            name, arguments = value
            start: dict[str, Any] = {"type": "tool_use", "id": f"toolu_01Fake{self.calls}",
                                     "name": name, "input": {}, "caller": {"type": "direct"}}
            raw = json.dumps(arguments)
            deltas = [{"type": "input_json_delta", "partial_json": p}
                      for p in ["", *_pieces(raw)]]
            whole = {**start, "input": arguments}
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(value)]
            deltas.append({"type": "signature_delta", "signature": "EqQBFakeSignature"})
            whole = {"type": "thinking", "thinking": value, "signature": "EqQBFakeSignature"}
        else:
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(value)]
            whole = {"type": "text", "text": value}
        self.event(msg_id, {"type": "content_block_start", "index": index,
                            "content_block": start})
        for delta in deltas:
            time.sleep(delay)
            self.event(msg_id, {"type": "content_block_delta", "index": index, "delta": delta})
        # The real CLI writes the whole block before the stream's content_block_stop.
        self.emit({"type": "assistant", "message": self.message(msg_id, [whole]),
                   "parent_tool_use_id": None, "session_id": self.session_id,
                   "uuid": str(uuid.uuid4())})
        self.event(msg_id, {"type": "content_block_stop", "index": index})

    def event(self, msg_id: str, event: dict[str, Any], **extra: Any) -> None:
        if self.partial:
            self.emit({"type": "stream_event", "event": event, "session_id": self.session_id,
                       "parent_tool_use_id": None, "uuid": str(uuid.uuid4()), **extra,
                       "api_message_id": msg_id})

    def message(self, msg_id: str, content: list[Any]) -> dict[str, Any]:
        return {"id": msg_id, "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": 1}}

    def result(self, stop: str | None, text: str, *, is_error: bool = False,
               status: int | None = None, error_type: str | None = None) -> None:
        calls = max(self.calls, 1) if not is_error else 0
        line: dict[str, Any] = {
            "type": "result", "subtype": "success", "is_error": is_error,
            "duration_ms": 30, "duration_api_ms": 20, "num_turns": 1, "result": text,
            "stop_reason": stop, "session_id": self.session_id, "total_cost_usd": 0,
            "usage": {"input_tokens": 25 * calls, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 12 * calls},
            "permission_denials": [], "api_error_status": status,
            "terminal_reason": "api_error" if is_error else "completed",
            "uuid": str(uuid.uuid4())}
        if error_type:
            line["api_error_type"] = error_type
        self.emit(line)

    def failure(self, text: str, error: str, status: int | None = None,
                error_type: str | None = None, **extra: Any) -> int:
        """What the real CLI says once it gives up: a made-up assistant line, a result."""
        line: dict[str, Any] = {
            "type": "assistant", "message": {
                "id": str(uuid.uuid4()), "type": "message", "role": "assistant",
                "model": "<synthetic>", "content": [{"type": "text", "text": text}],
                "stop_reason": "stop_sequence", "stop_sequence": "",
                "usage": {"input_tokens": 0, "output_tokens": 0}},
            "parent_tool_use_id": None, "session_id": self.session_id,
            "uuid": str(uuid.uuid4()), "error": error, "is_api_error_message": True}
        if status is not None:
            line.update(api_error_status=status, api_error_type=error_type)
        line.update(extra)
        self.emit(line)
        self.result("stop_sequence", text, is_error=True, status=status, error_type=error_type)
        return 1

    def rate_limited(self) -> int:
        resets = int(time.time()) + 3600
        info = {"status": "rejected", "resetsAt": resets, "rateLimitType": "five_hour",
                "isUsingOverage": False}
        self.emit({"type": "rate_limit_event", "rate_limit_info": info,
                   "uuid": str(uuid.uuid4()), "session_id": self.session_id})
        clock = time.strftime("%-I:%M%p", time.gmtime(resets)).lower()
        return self.failure(f"You've hit your 5-hour limit · resets {clock} (UTC)",
                            "rate_limit", 429, "rate_limit_error",
                            api_error="usage_limit_reached")

    def tool_turn(self) -> int:
        name = os.environ.get("FAKE_CLAUDE_TOOL", "get_weather")
        arguments = json.loads(os.environ.get("FAKE_CLAUDE_TOOL_INPUT", '{"city": "Paris"}'))
        self.api_call([("text", "Let me check."), ("tool_use", (name, arguments))], "tool_use")
        refusal = f"<tool_use_error>Error: No such tool available: {name}</tool_use_error>"
        self.emit({"type": "user", "message": {"role": "user", "content": [{
            "type": "tool_result", "content": refusal, "is_error": True,
            "tool_use_id": f"toolu_01Fake{self.calls}"}]}, "parent_tool_use_id": None,
            "session_id": self.session_id, "uuid": str(uuid.uuid4())})
        if self.partial:
            self.emit(self.system_line("status", status="requesting"))
        return self.answer_turn([("text", "That tool is not available to me.")])

    def broken(self, reply: str, mode: str) -> int:
        msg_id = f"msg_01FakeCli{os.getpid()}x1"
        self.calls = 1
        self.event(msg_id, {"type": "message_start", "message": self.message(msg_id, [])})
        self.event(msg_id, {"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}})
        for piece in _pieces(reply)[:2]:
            self.event(msg_id, {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": piece}})
        if mode == "hang_mid":
            _forever()
        if mode == "crash":
            sys.stderr.write("TypeError: undefined is not an object (evaluating 'e.usage')\n"
                             "    at <anonymous> (/$bunfs/root/claude:1:1)\n")
            sys.stderr.flush()
            os._exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "1")))
        self.event(msg_id, {"type": "content_block_stop", "index": 0})
        self.event(msg_id, {"type": "message_stop"},
                   abandoned_blocks={"api_message_id": msg_id, "from_block_index": 0})
        retry = f"msg_01FakeCli{os.getpid()}retry"
        self.emit({"type": "assistant", "message": {
            **self.message(retry, [{"type": "text", "text": reply}]), "stop_reason": "end_turn"},
            "parent_tool_use_id": None, "session_id": self.session_id,
            "uuid": str(uuid.uuid4())})
        self.result("end_turn", reply)
        return 0


# ------------------------------------------------------------------------- helpers


def parse_args(argv: list[str]) -> dict[str, str | bool]:
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in VALUE_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    _fail(f"error: option '{name} <value>' argument missing")
                value, i = argv[i + 1], i + 1
            options[name] = value
        elif arg in FLAG_OPTIONS:
            options[arg] = True
        elif arg in ("-v", "--version"):
            print(VERSION)
            sys.exit(0)
        elif arg.startswith("-"):
            _fail(f"error: unknown option '{arg}'")
        else:
            options["prompt"] = arg
        i += 1
    if options.get("--output-format") == "stream-json" and not options.get("--verbose"):
        _fail("Error: When using --print, --output-format=stream-json requires --verbose")
    return options


def _fail(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.exit(1)


def _recorder() -> Any:
    folder = os.environ.get("FAKE_CLAUDE_RECORD")
    if not folder:
        return lambda entry: None
    path = os.path.join(folder, f"{os.getpid()}.jsonl")
    keep = ("ANTHROPIC_", "CLAUDE", "DISABLE_", "FAKE_CLAUDE_", "HOME")
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}

    def record(entry: dict[str, Any]) -> None:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")

    record({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": env, "pid": os.getpid()})
    return record


def _logged_in() -> bool:
    if any(os.environ.get(name) for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
                                             "CLAUDE_CODE_OAUTH_TOKEN")):
        return True
    home = os.environ.get("HOME", "")
    return bool(home) and os.path.exists(os.path.join(home, ".claude", ".credentials.json"))


def _key_source() -> str:
    return "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none"


def _account() -> dict[str, Any]:
    """As the real CLI describes each kind of credentials (initialize_*.jsonl)."""
    if os.environ.get("FAKE_CLAUDE_MODE") == "not_logged_in" or not _logged_in():
        return {"tokenSource": "none", "apiProvider": "firstParty"}
    if os.environ.get("ANTHROPIC_API_KEY"):
        return {"tokenSource": "none", "apiKeySource": "ANTHROPIC_API_KEY",
                "apiProvider": "firstParty"}
    if os.environ.get("CLAUDE_CODE_OAUTH_TOKEN"):
        return {"tokenSource": "CLAUDE_CODE_OAUTH_TOKEN", "apiProvider": "firstParty"}
    return {"subscriptionType": "Claude Max", "apiProvider": "firstParty"}


def _models() -> list[dict[str, Any]]:
    names = {"opus": "Opus", "fable": "Fable", "sonnet": "Sonnet", "haiku": "Haiku"}
    return [{"value": "default", "resolvedModel": ALIASES["opus"],
             "displayName": "Default (recommended)"}] + [
        {"value": value, "resolvedModel": ALIASES[value], "displayName": display}
        for value, display in names.items()]


def _tools(options: dict[str, str | bool]) -> list[str]:
    tools = options.get("--tools", "default")
    return [t for t in str(tools).replace(",", " ").split() if t] if tools != "default" else [
        "Bash", "Edit", "Read"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or () if isinstance(b, dict)
             and b.get("type") == "text"]
    return texts[-1] if texts else ""


def _mode_in(prompt: str) -> str | None:
    for mode in MODES:
        if f"fake:{mode}" in prompt:
            return mode
    return None


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _forever() -> None:
    while True:
        time.sleep(3600)


def main() -> int:
    fake = Fake(parse_args(sys.argv[1:]))
    try:
        return fake.run()
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
