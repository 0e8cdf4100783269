"""canonical Request -> what the Claude Code CLI gets: its command line and environment
(fixed per pool, since a process starts before its request exists) and the stdin lines of
one request (its system prompt, its model, its one user turn).

Sans-I/O. Every option below was checked against 2.1.330, offline:

* ``-p --input-format stream-json --output-format stream-json --verbose`` (stream-json
  output requires ``--verbose``) and ``--include-partial-messages``: tokens as they come;
* ``--no-session-persistence``: no session files;
* ``--setting-sources ""``: without it the user's ``~/.claude/CLAUDE.md`` and the working
  directory's ``CLAUDE.md`` are pasted into every request (measured);
* ``--restricted``: without it an ``@/path`` in the prompt makes the CLI read that file on
  the proxy's machine and send it to the model, even with no tools (measured). With it,
  file access is confined to the working directory: give the children an empty one;
* ``--permission-prompts none``: whatever would ask for approval is denied, never waits;
* ``--tools ""`` (none) unless tools are configured; ``--system-prompt ""`` so that a
  request without a system prompt does not get Claude Code's own large one.

History is flattened into the one user turn (``transcript``). Resuming a CLI session
instead would need: ``--session-id``/``--resume`` at spawn time (so no pre-started
process, unless the control channel learns to switch sessions), session files kept (no
``--no-session-persistence``) in a fixed working directory, a store mapping a fingerprint
of the whole history (assistant turns and tool ids included) to the session id, shared by
the workers, and the flattened form whenever the history was edited or the key misses.

The CLI has no way to take ``temperature``, ``top_p``, stop sequences, ``max_tokens``
(only ``CLAUDE_CODE_MAX_OUTPUT_TOKENS`` at spawn) or ``tool_choice`` per request, and its
thinking effort is its own (``--effort`` at spawn; per request not verified), so
``Rendered.ignored`` names those a request set, for the logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from proxy.canonical import Request
from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.transcript import user_content

# Set in the children's environment unless the proxy's environment says otherwise.
ENV_DEFAULTS: Mapping[str, str] = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, no update checks
    "DISABLE_AUTOUPDATER": "1",  # pooled children must never update the binary under us
}
# The SDK drops it too: set inside a Claude Code session, it marks the child as nested.
ENV_DROPPED = ("CLAUDECODE",)


@dataclass(frozen=True, slots=True)
class Rendered:
    stdin: bytes  # control lines and the user turn, one JSON object a line
    ignored: tuple[str, ...]  # request fields the CLI cannot take


def cli_arguments(*, tools: Sequence[str] = (), model: str | None = None) -> list[str]:
    """The arguments after the executable. ``model`` is the start-up model (a request
    switches with ``set_model``); ``tools`` are the CLI's own tools to allow."""
    args = ["-p", "--input-format", "stream-json", "--output-format", "stream-json",
            "--verbose", "--include-partial-messages", "--no-session-persistence",
            "--setting-sources", "", "--restricted", "--permission-prompts", "none",
            "--tools", ",".join(tools), "--system-prompt", ""]
    if model:
        args += ["--model", model]
    return args


def cli_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The children's environment: the proxy's own (so ``ANTHROPIC_BASE_URL``,
    ``ANTHROPIC_API_KEY``, ``CLAUDE_CODE_OAUTH_TOKEN`` and ``HOME``, where a ``claude login``
    keeps its credentials, reach them), with ``ENV_DEFAULTS`` filled in."""
    env = {name: value for name, value in base.items() if name not in ENV_DROPPED}
    for name, value in ENV_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def render_input(request: Request, *, model: str) -> Rendered:
    """The stdin of one request: initialize (the system prompt), set_model, the user turn.
    ``model`` is the CLI's name for it (``models.cli_model``)."""
    system = list(request.system) or None
    stdin = (control.initialize(system) + control.set_model(model)
             + control.user_message(user_content(request.messages)))
    return Rendered(stdin, _ignored(request))


def _ignored(request: Request) -> tuple[str, ...]:
    fields = {"temperature": request.temperature is not None,
              "top_p": request.top_p is not None,
              "stop_sequences": bool(request.stop_sequences),
              "max_tokens": request.max_tokens is not None,
              "tools": bool(request.tools),
              "tool_choice": request.tool_choice is not None,
              "reasoning_effort": request.reasoning_effort is not None,
              "response_format": request.response_schema is not None or request.json_object}
    return tuple(name for name, present in fields.items() if present)
