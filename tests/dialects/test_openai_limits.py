"""Reading an upstream's 400 into a mended body, and what is remembered for the model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.dialects.openai.limits import Learned, learn_from_refusal
from tests.dialects.strategies import BOUNDED

BODY = {"model": "m", "messages": [], "max_tokens": 32000, "reasoning_effort": "high",
        "temperature": 0.5, "stream": True}


@pytest.mark.parametrize(("message", "changed", "remembered"), [
    ("Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
     {"max_tokens": 8192}, True),
    ("max_tokens is too large: 32000. This model supports at most 16384 completion tokens, "
     "whereas you provided 32000.", {"max_tokens": 16384}, True),
    ("This model's maximum context length is 32768 tokens. However, you requested 33000 "
     "tokens (1000 in the messages, 32000 in the completion).", {"max_tokens": 31768}, False),
    ("'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's maximum "
     "context length is 32768 tokens and your request has 2768 input tokens",
     {"max_tokens": 30000}, False),
])
def test_output_token_limits(message: str, changed: dict[str, Any], remembered: bool) -> None:
    learned = Learned()
    mended = learn_from_refusal(message, dict(BODY), learned)
    assert mended is not None and mended == {**BODY, **changed}
    assert (learned.max_tokens is not None) is remembered


@pytest.mark.parametrize(("message", "field"), [
    ("Unsupported parameter: 'reasoning_effort' is not supported with this model.",
     "reasoning_effort"),
    ("Unrecognized request argument supplied: reasoning_effort", "reasoning_effort"),
    ("Unsupported value: 'temperature' does not support 0.5 with this model.", "temperature"),
    ("[{'type': 'extra_forbidden', 'loc': ('body', 'reasoning_effort'), "
     "'msg': 'Extra inputs are not permitted'}]", "reasoning_effort"),
])
def test_unsupported_optional_fields_are_dropped_and_remembered(message: str,
                                                                 field: str) -> None:
    learned = Learned()
    mended = learn_from_refusal(message, dict(BODY), learned)
    assert mended is not None and field not in mended
    assert learned.dropped == {field}
    assert field not in learned.apply(dict(BODY))  # the next request never sends it


def test_o_series_token_field() -> None:
    learned = Learned()
    message = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
               "Use 'max_completion_tokens' instead.")
    mended = learn_from_refusal(message, dict(BODY), learned)
    assert mended is not None
    assert "max_tokens" not in mended and mended["max_completion_tokens"] == 32000


@pytest.mark.parametrize("message", [
    "messages.0.content: field required",
    "Unsupported parameter: 'messages' is required",  # never drop a required field
    "Invalid max_tokens value, the valid range of max_tokens is [1, 64000]",  # not below
    "Incorrect API key provided",
])
def test_other_refusals_are_not_mended(message: str) -> None:
    assert learn_from_refusal(message, dict(BODY), Learned()) is None


# Refusals as a hostile or broken upstream might word them: numbers of any length, the
# phrases the reader looks for in any order. Reading one never fails; it mends or declines.
_phrases = st.sampled_from([
    "valid range of max_tokens is [1, ", "supports at most ", " completion tokens",
    "maximum context length is ", " in the messages", "request has ", " input tokens",
    "'max_tokens' is not supported, use 'max_completion_tokens'", "Unsupported parameter: ",
    "reasoning_effort", "]", " ", "0", "-1"])
_numbers = st.integers(0, 10**6).map(str) | st.text("0123456789", min_size=1, max_size=6000)


@BOUNDED
@given(st.lists(_phrases | _numbers, max_size=8).map("".join),
       st.sampled_from([dict(BODY), {**BODY, "max_tokens": 2**64}, {"model": "m"}]))
def test_any_refusal_is_read_without_failing(message: str, body: dict[str, Any]) -> None:
    mended = learn_from_refusal(message, dict(body), Learned())
    assert mended is None or isinstance(mended, dict)


def test_a_number_too_long_to_read_is_no_limit() -> None:
    message = f"This model supports at most {'9' * 5000} completion tokens"
    assert learn_from_refusal(message, dict(BODY), Learned()) is None
