"""A scripted backend, as httpx's MockTransport is a scripted transport: it drives the
failover, the commit point and the edge writer in unit tests without a port.

A script is a list of steps, played in order for each call: a batch of canonical events
to yield, a ``Delay`` (seconds of silence), or a ``Fail`` (an exception to raise there).
``FakeBackend`` takes one script per call in turn (the last repeats), records every call
(route, key, request) and whether its stream was closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from proxy.backends.base import Call
from proxy.canonical import (
    BlockStart,
    BlockStop,
    Event,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    TextDelta,
    Usage,
)
from proxy.filters import EventFilter
from proxy.routing import Route


@dataclass(frozen=True)
class Delay:
    seconds: float


@dataclass(frozen=True)
class Fail:
    error: BaseException


Step = list[Event] | Delay | Fail
Script = Sequence[Step]


def text_answer(*pieces: str, message_id: str = "msg_fake") -> list[Step]:
    """A whole text answer: start, one block of ``pieces``, end; one batch per piece."""
    steps: list[Step] = [[MessageStart(message_id, "fake", Usage(input_tokens=3)),
                          BlockStart(0, "text")]]
    steps += [[TextDelta(0, piece)] for piece in pieces]
    steps.append([BlockStop(0), MessageDelta("end_turn", Usage(3, len(pieces))), MessageStop()])
    return steps


@dataclass
class Played:
    route: Route
    key: str | None
    request: Request
    closed: bool = False


@dataclass
class FakeBackend:
    scripts: list[Script]
    filters: Sequence[EventFilter] = ()
    calls: list[Played] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.stopped = True

    def stream(self, request: Request, call: Call, route: Route,
               key: str | None) -> AsyncGenerator[list[Event], None]:
        script = self.scripts[min(len(self.calls), len(self.scripts) - 1)]
        played = Played(route, key, request)
        self.calls.append(played)
        return self._play(script, played)

    async def _play(self, script: Script, played: Played) -> AsyncGenerator[list[Event], None]:
        try:
            for step in script:
                if isinstance(step, Delay):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Fail):
                    raise step.error
                else:
                    batch = step
                    for event_filter in self.filters:
                        batch = event_filter.feed(batch)
                    if batch:
                        yield batch
        finally:
            played.closed = True
