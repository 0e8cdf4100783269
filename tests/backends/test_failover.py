"""Failover order, the commit point and redaction, with scripted backends and no ports."""

from __future__ import annotations

import pytest

from proxy.backends.base import Call
from proxy.backends.failover import Attempts, stream_with_failover
from proxy.backends.keys import KeyPool
from proxy.canonical import Event, Message, MessageStart, Request, TextDelta, TextPart
from proxy.errors import UpstreamStatusError, UpstreamStreamError, UpstreamUnreachable
from proxy.observe.trace import Trace
from proxy.providers import Provider
from proxy.redaction import Masker
from proxy.routing import Plan, Route
from proxy.state.store import MemoryStore
from tests.fakes.backend import Delay, Fail, FakeBackend, text_answer

REQUEST = Request(model="m", messages=(Message("user", (TextPart("hi"),)),))
CALL = Call(message_id="msg_1", client_model="asked", input_tokens=5)


def status(code: int, message: str = "no") -> UpstreamStatusError:
    return UpstreamStatusError(message, status=code)


def setup(backends: dict[str, FakeBackend], keys: dict[str, tuple[str, ...]],
          masker: Masker | None = None) -> tuple[Attempts, Trace]:
    store = MemoryStore()
    providers = {name: Provider(name=name, base_url="http://x", keys=keys.get(name, ()))
                 for name in backends}
    plan = Plan(tuple(Route(p, f"{p.name}-model") for p in providers.values()))
    pools = {name: KeyPool(name, p.keys, store) for name, p in providers.items()}
    trace = Trace(request_id="req_t")
    redact = (lambda text: masker(text)) if masker else str
    return Attempts(plan, pools, lambda provider: None, trace, redact=redact), trace


async def run(backends: dict[str, FakeBackend], attempts: Attempts,
              wait: float = 5.0) -> list[list[Event]]:
    return [batch async for batch in stream_with_failover(backends, attempts, REQUEST, CALL,
                                                          wait)]


def texts(batches: list[list[Event]]) -> str:
    return "".join(e.text for b in batches for e in b if isinstance(e, TextDelta))


async def test_next_key_then_the_fallback_in_order() -> None:
    first = FakeBackend([[Fail(status(429))], [Fail(status(503))]])
    second = FakeBackend([text_answer("ok")])
    attempts, trace = setup({"one": first, "two": second}, {"one": ("k1", "k2")})
    batches = await run({"one": first, "two": second}, attempts)
    assert texts(batches) == "ok"
    assert [c.key for c in first.calls] == ["k1", "k2"] and len(second.calls) == 1
    assert trace.attempts == 3 and trace.backend == "two"
    assert all(c.closed for c in first.calls)  # failed attempts are closed at once


async def test_auth_failures_try_other_keys_but_never_fall_back() -> None:
    first = FakeBackend([[Fail(status(401, "bad key"))]])
    second = FakeBackend([text_answer("never")])
    attempts, _ = setup({"one": first, "two": second}, {"one": ("k1", "k2")})
    with pytest.raises(UpstreamStatusError) as caught:
        await run({"one": first, "two": second}, attempts)
    assert [c.key for c in first.calls] == ["k1", "k2"] and not second.calls
    assert caught.value.status == 502  # the proxy's own key refused: not the client's fault


async def test_a_client_error_is_not_retried() -> None:
    first = FakeBackend([[Fail(status(400, "bad field"))]])
    second = FakeBackend([text_answer("never")])
    attempts, _ = setup({"one": first, "two": second}, {})
    with pytest.raises(UpstreamStatusError) as caught:
        await run({"one": first, "two": second}, attempts)
    assert caught.value.status == 400 and not second.calls


async def test_a_failure_right_after_the_start_is_still_retried() -> None:
    start = text_answer("x")[0][:1]  # message_start alone: no content yet
    first = FakeBackend([[start, Fail(UpstreamStreamError("overloaded", status=529))]])
    second = FakeBackend([text_answer("fine")])
    attempts, _ = setup({"one": first, "two": second}, {})
    assert texts(await run({"one": first, "two": second}, attempts)) == "fine"


async def test_after_the_first_content_a_failure_is_the_clients() -> None:
    steps = text_answer("a", "b")
    first = FakeBackend([[*steps[:2], Fail(UpstreamUnreachable("cut"))]])
    second = FakeBackend([text_answer("never")])
    attempts, _ = setup({"one": first, "two": second}, {})
    seen: list[list[Event]] = []
    with pytest.raises(UpstreamUnreachable):
        async for batch in stream_with_failover({"one": first, "two": second}, attempts,
                                                REQUEST, CALL, 5.0):
            seen.append(batch)
    assert texts(seen) == "a" and not second.calls


async def test_a_silent_upstream_is_committed_with_a_made_up_start() -> None:
    steps = text_answer("late")
    backend = FakeBackend([[Delay(0.3), *steps]])
    attempts, _ = setup({"one": backend}, {})
    batches = await run({"one": backend}, attempts, wait=0.05)
    starts = [e for b in batches for e in b if isinstance(e, MessageStart)]
    assert len(starts) == 1 and starts[0].id == "msg_1" and starts[0].model == "asked"
    assert starts[0].usage.input_tokens == 5 and batches[0] == [starts[0]]
    assert texts(batches) == "late"


async def test_a_start_then_silence_keeps_the_upstreams_own_start() -> None:
    steps = text_answer("slow")
    backend = FakeBackend([[steps[0][:1], Delay(0.3), steps[0][1:], *steps[1:]]])
    attempts, _ = setup({"one": backend}, {})
    batches = await run({"one": backend}, attempts, wait=0.05)
    starts = [e for b in batches for e in b if isinstance(e, MessageStart)]
    assert [s.id for s in starts] == ["msg_fake"] and texts(batches) == "slow"


async def test_errors_leave_with_every_secret_masked() -> None:
    backend = FakeBackend([[Fail(status(400, "key glm.SECRETKEY99 is disabled"))]])
    attempts, _ = setup({"one": backend}, {"one": ("glm.SECRETKEY99",)},
                        Masker(["glm.SECRETKEY99", "other-provider-key"]))
    with pytest.raises(UpstreamStatusError) as caught:
        await run({"one": backend}, attempts)
    assert "SECRETKEY99" not in caught.value.message and "***" in caught.value.message
    assert "SECRETKEY99" not in str(caught.value)


async def test_in_stream_errors_are_masked_too() -> None:
    steps = text_answer("a")
    error = UpstreamStreamError("quota of other-provider-key exhausted")
    backend = FakeBackend([[*steps[:2], Fail(error)]])
    attempts, _ = setup({"one": backend}, {}, Masker(["other-provider-key"]))
    with pytest.raises(UpstreamStreamError) as caught:
        await run({"one": backend}, attempts)
    assert caught.value.message == "quota of *** exhausted"


async def test_attempts_are_bounded() -> None:
    backend = FakeBackend([[Fail(status(503))]])
    keys = tuple(f"k{i}" for i in range(10))
    attempts, trace = setup({"one": backend}, {"one": keys})
    with pytest.raises(UpstreamStatusError):
        await run({"one": backend}, attempts)
    assert len(backend.calls) == 6 == trace.attempts


async def test_a_retry_gets_the_request_parsed_again_and_nothing_keeps_the_first() -> None:
    from proxy.backends.failover import Requests
    first = FakeBackend([[Fail(status(503))]])
    second = FakeBackend([text_answer("ok")])
    attempts, _ = setup({"one": first, "two": second}, {})
    again_calls: list[Request] = []

    def again() -> Request:
        fresh = Request(model="m", messages=REQUEST.messages)
        again_calls.append(fresh)
        return fresh

    original = Request(model="m", messages=REQUEST.messages)
    requests = Requests(original, again)
    batches = [b async for b in stream_with_failover({"one": first, "two": second}, attempts,
                                                     requests, CALL, 5.0)]
    assert texts(batches) == "ok"
    assert first.calls[0].request is original and second.calls[0].request is again_calls[0]
    assert requests.first is None  # handed over once, not kept


async def test_the_log_says_what_comes_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """Not "trying the next key or fallback" when there is neither (issue 15)."""
    import logging
    caplog.set_level(logging.WARNING, "proxy.failover")
    alone = FakeBackend([[Fail(status(503))]])
    attempts, _ = setup({"one": alone}, {})
    with pytest.raises(UpstreamStatusError):
        await run({"one": alone}, attempts)
    assert [r.getMessage() for r in caplog.records] == [
        "attempt 1 on one failed (503); nothing is left to try"]
    caplog.clear()
    first, second = FakeBackend([[Fail(status(503))]]), FakeBackend([text_answer("ok")])
    attempts, _ = setup({"one": first, "two": second}, {})
    await run({"one": first, "two": second}, attempts)
    assert [r.getMessage() for r in caplog.records] == [
        "attempt 1 on one failed (503); trying two (two-model)"]
