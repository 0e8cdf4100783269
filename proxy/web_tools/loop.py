"""The web tool loop: one client response, made of rounds of the backend model with the web
calls it makes run in between, streamed as it happens.

``Upstreams.stream`` wraps its failover stream in ``web_tool_stream`` when a translated
request asks for web search or fetch (a relay to Anthropic passes them through untouched:
that upstream runs its own). Each round is a whole upstream call through the same
failover (``open_round``); its events go to the client as they come, renumbered
(``rounds.Rounds``), except the model's calls of ``web_search``/``web_fetch``: when such a
call's block closes, the client gets a ``server_tool_use`` block at once (so everything the
model wrote before it is out before the search starts), the proxy runs the call (Tavily,
after the URL rules and the DNS check for a fetch), the client gets the result block, and
the model reads the result as the function's answer in the next round.

The two error regimes hold as everywhere: a failure of the first round before its first
content is still an HTTP error; anything later (a failed second round included) is the
in-stream error. A Tavily failure is no failure of the response: it is an error result
block the model reads and can answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from proxy.backends.base import Batches, Call
from proxy.canonical import Event, Request, ServerToolError
from proxy.web_tools.offer import after_a_round, left_out, offer
from proxy.web_tools.resolve import Resolver, host_refusal, system_resolver
from proxy.web_tools.rounds import MAX_ROUNDS, Rounds, WebCall
from proxy.web_tools.session import FetchCall, Outcome, Planned, WebToolSession
from proxy.web_tools.tavily import TavilyClient

log = logging.getLogger("proxy.web_tools")
OpenRound = Callable[[Request], Batches]


class _Runner:
    """Runs planned calls: the DNS half of the URL rule, then Tavily."""

    def __init__(self, session: WebToolSession, tavily: TavilyClient, resolver: Resolver
                 ) -> None:
        self.session, self._tavily, self._resolver = session, tavily, resolver

    async def run(self, planned: Planned) -> Outcome:
        call = planned.call
        if call is None:
            return self.session.finish(planned)
        if isinstance(call, FetchCall):
            refusal = await host_refusal(call.host, self._resolver)
            if refusal is not None:
                return self.session.finish(planned, ServerToolError(refusal))
            answer = await self._tavily.extract(call)
        else:
            answer = await self._tavily.search(call)
        retrieved = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return self.session.finish(planned, answer, retrieved_at=retrieved)


def web_tool_stream(open_round: OpenRound, request: Request, call: Call,
                    tavily: TavilyClient | None, *, resolver: Resolver = system_resolver,
                    max_rounds: int = MAX_ROUNDS) -> Batches:
    """The client's response to a request that asks for web tools. Without Tavily (no key)
    they are left out and the answer opens with a note saying so. A malformed web tool
    definition raises ``InvalidRequest`` here, before anything is sent."""
    if tavily is None:
        model_request, note = left_out(request)
        rounds = Rounds(lambda name: False, call.message_id, note=note, max_rounds=1)
        return _rounds(open_round, model_request, rounds, None)
    model_request, spec = offer(request)
    session = WebToolSession(spec, tavily.settings, request.messages)
    rounds = Rounds(session.handles, call.message_id, server_usage=lambda: session.usage,
                    max_rounds=max_rounds)
    return _rounds(open_round, model_request, rounds, _Runner(session, tavily, resolver))


async def _rounds(open_round: OpenRound, request: Request, rounds: Rounds,
                  runner: _Runner | None) -> Batches:
    messages = request.messages
    while True:
        batches = open_round(replace(request, messages=messages))
        try:
            async for batch in batches:
                out: list[Event] = []
                for event in batch:
                    for item in rounds.feed(event):
                        if not isinstance(item, WebCall):
                            out.append(item)
                            continue
                        assert runner is not None  # Rounds only finds calls it was told of
                        planned = runner.session.plan(item.name, item.arguments)
                        tool_id, shown = rounds.use_blocks(item, planned.tool_input)
                        yield out + shown  # the client sees the call before it runs
                        out = []
                        outcome = await runner.run(planned)
                        log.debug("%s %s: %s", item.name, planned.tool_input,
                                  getattr(outcome.result, "error_code", "ok"))
                        out += rounds.result_blocks(item, tool_id, outcome)
                if out:
                    yield out
        finally:
            await batches.aclose()
        if not rounds.again:
            return
        messages = rounds.next_round(messages)
        request = after_a_round(request)
