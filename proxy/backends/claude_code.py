"""The local Claude Code CLI as a backend: a user's Claude subscription behind any client.

A warm pool of CLI processes (``cli_pool.py``) is started with the app; a request takes a
ready one (one request per process, so no conversation reaches another), sends its turn
as stream-json on stdin (``dialects/claude_code/request_render.py``: the system prompt, the
model, the whole history flattened into the one turn) and reads the CLI's NDJSON output
through the shared read loop: NDJSON framing, the stream-json decoder, and, when the
client sent tools, the same prompt injection and tool-call sniffer as the backboard
backend. Tokens stream as the model writes them (``--include-partial-messages``). The
CLI's own tools are off unless CLAUDE_TOOLS names some.

The child gets the proxy's environment (``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``,
``CLAUDE_CODE_OAUTH_TOKEN`` or the user's ``claude login`` reach it) and writes no session
files. A missing CLI, or one not logged in, is a 503 saying what to run, on each request,
in ``/health`` and in the start-up log.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from proxy.backends.base import Batches, Call, Context
from proxy.backends.cli_pool import CLIPool
from proxy.backends.cli_process import CLIProcess
from proxy.backends.pipeline import Opened, decoded
from proxy.canonical import Request
from proxy.config import child_environment, claude_cli
from proxy.dialects.claude_code.failures import exit_error
from proxy.dialects.claude_code.models import cli_model, listed_models
from proxy.dialects.claude_code.request_render import (
    Rendered,
    cli_arguments,
    cli_environment,
    render_input,
)
from proxy.dialects.claude_code.stream_decode import ClaudeCodeStreamDecoder
from proxy.errors import NotFound
from proxy.filters.tool_sniffer import ToolSniffer
from proxy.ndjson import NDJSONDecoder
from proxy.offload import off_loop
from proxy.prompt_tools.describe import tools_in_prompt
from proxy.providers import Provider
from proxy.routing import Route

log = logging.getLogger("proxy.claude_code")
MODELS_WAIT = 5.0  # seconds a model list waits for the CLI to say its models, after start


class ClaudeCodeBackend:
    def __init__(self, provider: Provider, context: Context) -> None:
        settings = self.settings = context.settings
        tools = [t.strip() for t in settings.claude_tools.split(",") if t.strip()]
        command = [claude_cli(settings), *cli_arguments(tools=tools)]
        self.pool = CLIPool(command, env=cli_environment(child_environment()),
                            size=settings.pool_size, silence_timeout=settings.claude_timeout)
        self.provider = provider

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    def stream(self, request: Request, call: Call, route: Route, key: str | None) -> Batches:
        model = cli_model(route.model)
        if model is None:
            raise NotFound(f"The Claude Code CLI knows no model {route.model!r}: use opus, "
                           "sonnet, haiku or a claude-* name.")
        names = [tool.name for tool in request.tools]
        decoder = ClaudeCodeStreamDecoder(message_id=call.message_id, model=call.client_model,
                                          input_tokens=call.input_tokens, clock=time.monotonic)
        filters = (ToolSniffer(names),) if names else ()

        async def opener(stack: contextlib.AsyncExitStack) -> Opened:
            rendered = await off_loop(call.body_size, _rendered, request, model)
            if rendered.ignored:
                log.info("%s: the Claude Code CLI takes no %s; left out", call.message_id,
                         ", ".join(rendered.ignored))
            process = await stack.enter_async_context(self.pool.process())
            await process.send(rendered.stdin)
            return CLIOutput(process, call.record)

        return decoded(opener, NDJSONDecoder(self.settings.max_frame_bytes), decoder, filters,
                       grace=self.settings.claude_timeout)

    async def models(self) -> list[tuple[str, str]]:
        cli = await self.pool.checked(MODELS_WAIT)
        return listed_models(cli.models if cli is not None else None)

    def health(self) -> dict[str, object]:
        status = self.pool.status()
        return {"ready": status.ready, "starting": status.starting, "busy": status.busy,
                "waiting": status.waiting, "ok": status.problem is None,
                **({"problem": status.problem} if status.problem else {})}


class CLIOutput:
    """A child's stdout as the read loop's byte source. Its end before the ``result`` line
    is the CLI's failure, said with its exit status and the last of its stderr."""

    def __init__(self, process: CLIProcess,
                 record: Callable[[bytes], None] | None = None) -> None:
        self._process = process
        self._record = record

    async def read(self) -> bytes:
        chunk = await self._process.read()
        if self._record is not None:
            self._record(chunk)
        if not chunk:
            raise exit_error(await self._process.exit_status(), self._process.stderr_tail)
        return chunk

    async def finished(self) -> None:
        """Nothing to tidy: the pool stops the process when the request is done."""


def _rendered(request: Request, model: str) -> Rendered:
    return render_input(tools_in_prompt(request), model=model)
