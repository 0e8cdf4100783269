"""Properties, over hostile input of every shape (tests/dialects/strategies.py):

* any request body either becomes a request that renders for both upstream dialects, or
  is refused with a 400 (``InvalidRequest``) that names its field;
* any upstream stream, cut into reads anywhere, gives events in the canonical grammar that
  both client encoders and both response bodies take, and if anything ends it, it is a
  ``ProxyError`` (a 502 or the upstream's own error), never a crash.

Bounded and derandomized (``strategies.BOUNDED``); ``PROPERTY_EXAMPLES=5000`` searches
deeper.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import InvalidRequest, ProxyError
from tests.dialects import strategies as s
from tests.dialects.pipeline import check_events, run_decoder, take_anthropic, take_openai
from tests.dialects.strategies import BOUNDED


def refused_well(error: InvalidRequest) -> None:
    assert error.status == 400 and error.message
    assert error.param is None or isinstance(error.param, str)


@BOUNDED
@given(s.anthropic_bodies, st.booleans())
def test_any_anthropic_request_is_taken_or_refused_with_a_400(body: Any, counting: bool) -> None:
    try:
        take_anthropic(body, for_counting=counting)
    except InvalidRequest as error:
        refused_well(error)


@BOUNDED
@given(s.openai_bodies)
def test_any_openai_request_is_taken_or_refused_with_a_400(body: Any) -> None:
    try:
        take_openai(body)
    except InvalidRequest as error:
        refused_well(error)


@BOUNDED
@given(s.json_values)
def test_any_json_at_all_is_refused_with_a_400(body: Any) -> None:
    for take in (take_anthropic, take_openai):
        try:
            take(body)
        except InvalidRequest as error:
            refused_well(error)


def openai_decoder() -> OpenAIStreamDecoder:
    return OpenAIStreamDecoder(message_id="msg_1", model="m", input_tokens=3,
                               tool_names={"f": "restored_f"})


def anthropic_decoder() -> AnthropicStreamDecoder:
    return AnthropicStreamDecoder(message_id="msg_1", model="m", input_tokens=3)


@BOUNDED
@given(s.openai_streams, st.data(), st.booleans())
def test_any_openai_stream_decodes_or_fails_as_a_proxy_error(
        frames: list[str], data: st.DataObject, truncated: bool) -> None:
    run_decoder(openai_decoder(), data.draw(s.batches(frames)), truncated=truncated)


@BOUNDED
@given(s.anthropic_streams, st.data(), st.booleans())
def test_any_anthropic_stream_decodes_or_fails_as_a_proxy_error(
        frames: list[str], data: st.DataObject, truncated: bool) -> None:
    run_decoder(anthropic_decoder(), data.draw(s.batches(frames)), truncated=truncated)


@BOUNDED
@given(s.openai_streams)
def test_an_openai_stream_decodes_the_same_in_any_batches(frames: list[str]) -> None:
    whole = run_decoder(openai_decoder(), [frames])
    one_by_one = run_decoder(openai_decoder(), [[f] for f in frames])
    assert _same(whole, one_by_one)


@BOUNDED
@given(s.anthropic_streams)
def test_an_anthropic_stream_decodes_the_same_in_any_batches(frames: list[str]) -> None:
    whole = run_decoder(anthropic_decoder(), [frames])
    one_by_one = run_decoder(anthropic_decoder(), [[f] for f in frames])
    assert _same(whole, one_by_one)


@BOUNDED
@given(s.openai_completions)
def test_any_openai_completion_body_decodes_or_is_a_proxy_error(body: Any) -> None:
    try:
        events = openai_decoder().feed_completion(body)
    except ProxyError:
        return
    check_events(events, complete=True)


@BOUNDED
@given(s.anthropic_messages)
def test_any_anthropic_message_body_decodes_or_is_a_proxy_error(body: Any) -> None:
    try:
        events = anthropic_decoder().feed_message(body)
    except ProxyError:
        return
    check_events(events, complete=True)


def _same(a: tuple[list[Any], ProxyError | None], b: tuple[list[Any], ProxyError | None]
          ) -> bool:
    """The same events (tool ids made up by the decoder aside) and the same failure."""
    def plain(events: list[Any]) -> list[Any]:
        return [getattr(e, "tool_name", None) if type(e).__name__ == "BlockStart"
                and e.tool_id.startswith("toolu_") else e for e in events]
    return plain(a[0]) == plain(b[0]) and type(a[1]) is type(b[1])
