"""``python -m proxy.client``: send a prompt through the proxy, stream the answer to stdout.

Flags and their environment defaults, the prompt (argument or stdin), the model (flag,
``PROXY_MODEL``, else the first the proxy lists), one request streamed live or ``-n N``
concurrent ones with a summary table on stderr. Errors are one plain line on stderr; the
exit status says whether every request succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from proxy.client.client import ProxyClient
from proxy.client.defaults import DEFAULT_URL, ClientDefaults, client_defaults
from proxy.client.wire import DIALECTS, Completion, ProxyClientError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
output:
  One request: the answer's text goes to stdout as it arrives (all at once with
  --no-stream); thinking is not printed unless --thinking (to stderr).
  -n N > 1: the N requests run at the same time and their text is not streamed; a
  summary table goes to stderr (request #, ok/error, time to first token, total time,
  tokens in/out, characters), and stdout gets only the text of the lowest-numbered
  request that succeeded.

exit status: 0 if every request succeeded, 1 if any failed, 2 for a usage error (no
prompt, no model), 130 if interrupted.

environment: PROXY_URL, PROXY_MODEL, PROXY_API_KEY give the defaults of --url, --model
and --api-key; unset, claudebridge's BRIDGE_URL, OPENROUTER_MODEL, OPENROUTER_API_KEY do
(a note on stderr says so)."""


class UsageError(Exception):
    """A mistake in how the command was called: reported, exit status 2."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's result for the summary: ``text`` is what arrived, even if it failed."""

    number: int
    text: str
    total_s: float
    completion: Completion | None = None
    error: ProxyClientError | None = None


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    defaults = client_defaults(env)
    parser = argparse.ArgumentParser(
        prog="python -m proxy.client", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Send a prompt through llm-dialect-proxy and stream the answer.")
    parser.add_argument("prompt", nargs="?", default="-",
                        help='the prompt; read from stdin when absent or "-"')
    parser.add_argument("--url", default=defaults.url,
                        help=f"the proxy's base URL (default: $PROXY_URL, else {DEFAULT_URL})")
    parser.add_argument("-m", "--model", default=defaults.model,
                        help="model name (default: $PROXY_MODEL, else the first model "
                             "the proxy lists at /v1/models)")
    parser.add_argument("--dialect", choices=DIALECTS, default="anthropic",
                        help="speak to the proxy as an Anthropic (/v1/messages) or OpenAI "
                             "(/v1/chat/completions) client (default: %(default)s)")
    parser.add_argument("--no-stream", dest="stream", action="store_false",
                        help="ask for one JSON answer instead of a stream")
    parser.add_argument("-n", type=_positive, default=1, metavar="N",
                        help="send N identical requests concurrently (default: 1)")
    parser.add_argument("--max-tokens", type=_positive, default=1024, metavar="N",
                        help="the answer's token limit (default: %(default)s)")
    parser.add_argument("--system", metavar="TEXT", help="a system prompt")
    parser.add_argument("--api-key", default=defaults.api_key, metavar="KEY",
                        help="key for the proxy, as x-api-key (anthropic) or Authorization: "
                             "Bearer (openai) (default: $PROXY_API_KEY)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="the longest silence allowed while waiting (default: %(default)s)")
    parser.add_argument("--thinking", action="store_true",
                        help="print the model's thinking to stderr (one request only)")
    parser.add_argument("--summary", action="store_true",
                        help="print the summary table for a single request too")
    return parser


def say_borrowed(defaults: ClientDefaults, args: argparse.Namespace) -> None:
    """A note on stderr for each claudebridge variable that gave a value in use."""
    used = {"PROXY_URL": (args.url, defaults.url), "PROXY_API_KEY": (args.api_key,
            defaults.api_key), "PROXY_MODEL": (args.model, defaults.model)}
    for ours, theirs in defaults.borrowed:
        value, default = used[ours]
        if value == default:
            print(f"note: {theirs} (claudebridge's) read as {ours}", file=sys.stderr)


def read_prompt(argument: str) -> str:
    text = sys.stdin.read() if argument == "-" else argument
    if not text.strip():
        raise UsageError("the prompt is empty (give it as an argument or on stdin)")
    return text.rstrip("\r\n") if argument == "-" else text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(os.environ).parse_args(argv)
    say_borrowed(client_defaults(os.environ), args)
    try:
        prompt = read_prompt(args.prompt)
        return asyncio.run(run(args, prompt))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout's reader left (`| head`): stop quietly, and keep Python's own
        # shutdown flush from failing the same way.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


async def run(args: argparse.Namespace, prompt: str) -> int:
    async with ProxyClient(args.url, api_key=args.api_key, dialect=args.dialect,
                           timeout=args.timeout, max_connections=max(100, args.n)) as client:
        try:
            model = args.model or await default_model(client)
        except ProxyClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if args.n == 1:
            return await _single(client, args, prompt, model)
        return await _many(client, args, prompt, model)


async def default_model(client: ProxyClient) -> str:
    models = await client.models()
    if not models:
        raise UsageError(f"no model: pass --model or set PROXY_MODEL (the proxy at "
                         f"{client.url} lists none)")
    return models[0]


async def ask(client: ProxyClient, args: argparse.Namespace, prompt: str, model: str,
              number: int, live: Callable[[str], None] | None = None,
              on_thinking: Callable[[str], None] | None = None) -> Outcome:
    """One request, streamed or not; text pieces also go to ``live`` as they arrive."""
    started = time.perf_counter()
    received: list[str] = []
    try:
        if not args.stream:
            done = await client.complete(prompt, model=model, max_tokens=args.max_tokens,
                                         system=args.system)
            return Outcome(number, done.text, done.total_s, done)
        stream = client.stream(prompt, model=model, max_tokens=args.max_tokens,
                               system=args.system, on_thinking=on_thinking)
        async for piece in stream:
            received.append(piece)
            if live is not None:
                live(piece)
        final = stream.completion
        if final is None:  # cannot happen: a stream that ends well sets it
            raise ProxyClientError(None, "incomplete_stream", "the stream gave no result")
        return Outcome(number, final.text, final.total_s, final)
    except ProxyClientError as exc:
        return Outcome(number, "".join(received), time.perf_counter() - started, error=exc)


def to_stdout(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def to_stderr(piece: str) -> None:
    sys.stderr.write(piece)
    sys.stderr.flush()


async def _single(client: ProxyClient, args: argparse.Namespace, prompt: str,
                  model: str) -> int:
    outcome = await ask(client, args, prompt, model, 1,
                        live=to_stdout if args.stream else None,
                        on_thinking=to_stderr if args.thinking else None)
    if not args.stream and outcome.completion is not None:
        if args.thinking and outcome.completion.thinking:
            print(outcome.completion.thinking, file=sys.stderr)
        sys.stdout.write(outcome.text)
    if outcome.text and not outcome.text.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    if outcome.error is not None:
        print(f"error: {outcome.error}", file=sys.stderr)
    if args.summary:
        print_summary([outcome], outcome.total_s)
    return EXIT_OK if outcome.error is None else EXIT_FAILED


async def _many(client: ProxyClient, args: argparse.Namespace, prompt: str,
                model: str) -> int:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(ask(client, args, prompt, model, number)
                                      for number in range(1, args.n + 1)))
    wall = time.perf_counter() - started
    first = next((o for o in outcomes if o.error is None), None)
    if first is not None:
        sys.stdout.write(first.text if first.text.endswith("\n") else first.text + "\n")
        sys.stdout.flush()
    print_summary(outcomes, wall)
    return EXIT_OK if all(o.error is None for o in outcomes) else EXIT_FAILED


# --- the summary table -------------------------------------------------------------------

COLUMNS = ("#", "status", "ttfb", "total", "in", "out", "chars")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary_row(outcome: Outcome) -> tuple[str, ...]:
    done = outcome.completion
    return (str(outcome.number), "ok" if outcome.error is None else "error",
            _secs(done.ttfb_s if done else None), _secs(outcome.total_s),
            _count(done.input_tokens if done else None),
            _count(done.output_tokens if done else None), str(len(outcome.text)))


def summary_lines(outcomes: Sequence[Outcome], wall_s: float) -> list[str]:
    rows = [COLUMNS, *(summary_row(o) for o in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for row, outcome in zip(rows, [None, *outcomes], strict=True):
        cells = [cell.ljust(w) if i == 1 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        line = "  ".join(cells)
        if outcome is not None and outcome.error is not None:
            line += f"  {outcome.error}"
        lines.append(line.rstrip())
    ok = sum(o.error is None for o in outcomes)
    lines.append(f"{ok}/{len(outcomes)} ok, {len(outcomes) - ok} failed, "
                 f"wall {wall_s:.3f}s")
    return lines


def print_summary(outcomes: Sequence[Outcome], wall_s: float) -> None:
    print("\n".join(summary_lines(outcomes, wall_s)), file=sys.stderr)
