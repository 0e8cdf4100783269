"""An HTTP backend renders a small request in the caller's turn: the unstarted stream it
returns holds the upstream bytes, not the canonical request (several times their size),
so a burst of requests queued behind each other holds only bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from proxy.backends.anthropic_http import AnthropicBackend
from proxy.backends.base import Call, Context
from proxy.backends.openai_http import OpenAIBackend
from proxy.canonical import Message, Request, TextPart
from proxy.config import Settings
from proxy.offload import OFF_LOOP_BYTES
from proxy.providers import Provider
from proxy.redaction import Masker
from proxy.routing import Route
from proxy.state.store import MemoryStore
from tests.support import reachable


def request() -> Request:
    return Request(model="claude", messages=(Message("user", (TextPart("hello " * 50),)),),
                   max_tokens=100, stream=True)


def backend(kind: type[Any]) -> Any:
    provider = Provider(name="p", base_url="http://127.0.0.1:9/v1")
    return kind(provider, Context(Settings(), Masker(()), MemoryStore()))


async def streams(kind: type[Any], size: int, canonical: Request) -> AsyncIterator[Any]:
    b = backend(kind)
    if kind is OpenAIBackend:  # what the model refused before, read once per process
        await b._learned.get("up")
    call = Call(message_id="msg_1", client_model="claude", input_tokens=1, body_size=size)
    yield b.stream(canonical, call, Route(b.provider, "up"), None)


@pytest.mark.parametrize("kind", [OpenAIBackend, AnthropicBackend])
async def test_a_small_request_is_not_held_by_its_unstarted_stream(kind: type[Any]) -> None:
    canonical = request()
    async for batches in streams(kind, 1000, canonical):
        assert not reachable(batches, canonical)
        await batches.aclose()


@pytest.mark.parametrize("kind", [OpenAIBackend, AnthropicBackend])
async def test_a_large_one_waits_for_its_turn_off_the_loop(kind: type[Any]) -> None:
    canonical = request()
    async for batches in streams(kind, OFF_LOOP_BYTES, canonical):
        assert reachable(batches, canonical)  # rendered in a thread once the stream starts
        await batches.aclose()
