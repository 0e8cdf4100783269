"""Event filters: sans-I/O stages between a backend's stream decoder and the client.

A filter takes the canonical events one upstream read completed and returns the events
the client should see: the same, or with blocks split, held back, renumbered or turned
into others (the tool-call sniffer turns a model's JSON text into ``tool_use`` blocks for
backends that have no native tools). Chosen per backend; chained in order.
"""

from __future__ import annotations

from typing import Protocol

from proxy.canonical import Event


class EventFilter(Protocol):
    def feed(self, events: list[Event]) -> list[Event]:
        """The events to pass on now, given the next batch. A filter may hold events back
        (it must release them by the batch that carries ``MessageStop``), but it must keep
        the canonical grammar: blocks in order, never interleaved, dense indexes."""
        ...

    def finish(self) -> list[Event]:
        """The upstream ended without ``MessageStop`` (the decoder is about to raise):
        whatever was held back and is still the client's."""
        ...
