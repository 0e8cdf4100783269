"""Reading a body's model without parsing it (``peek_model``): only when that is safe."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.edge.body import peek_model

CLAUDE_CODE_TASK_TOOL = (b',"tools":[{"name":"Task","input_schema":{"type":"object","properties":'
                         b'{"model":{"type":"string","enum":["sonnet","opus","haiku"]}}}}]}')


@pytest.mark.parametrize(("raw", "model"), [
    (b'{"model":"claude-x","messages":[]}', "claude-x"),
    (b' {\n "model" : "gpt-\\u00e9\\"q" , "messages": []}', 'gpt-é"q'),
    # A later "model" that can name no model: a key with an object value (Claude Code's
    # Task tool has one), a string in a list, words in a text.
    (b'{"model":"m"' + CLAUDE_CODE_TASK_TOOL, "m"),
    (b'{"model":"m","tools":[{"input_schema":{"properties":{"model":{}}}}]}', "m"),
    (b'{"model":"m","x":{"model" : {}},"y":["model","b"],"z":"say \\"model\\""}', "m"),
    # Not the first key, or a later key that may be "model" (the upstream would read the
    # last): with any other value, nested or not, or spelt with escapes; not a string;
    # cut short: parse it all instead.
    (b'{"messages":[],"model":"m"}', None),
    (b'{"model":"cheap","messages":[],"model":"dear"}', None),
    (b'{"model":"cheap","messages":[],"model"\n:\t"dear"}', None),
    (b'{"model":"cheap","messages":[],"mod\\u0065l":"dear"}', None),
    (b'{"model":"cheap","messages":[],"\\u006D\\u006f\\u0064el":"dear"}', None),
    (b'{"model":"cheap","messages":[],"model":5}', None),
    (b'{"model":"cheap","messages":[],"Model":"dear"}', None),  # Go ignores the case
    (b'{"model":"cheap","x":{"MODEL" : "dear"}}', None),
    (b'{"model":"cheap","\\u004Dodel":"dear"}', None),
    (b'{"model":"cheap","x":{"model":"dear"}}', None),
    (b'{"model":"cheap","model":["dear"]}', None),
    (b'{"model":5}', None), (b'{"model":"open', None), (b'[]', None), (b'', None),
])
def test_peek_model(raw: bytes, model: str | None) -> None:
    assert peek_model(raw) == model


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["model", "mod\\u0065l", "a"]), inner, max_size=3),
    max_leaves=8)
class Object(list[tuple[str, object]]):
    """A JSON object read as its pairs, every duplicate key kept."""


KEYS = st.sampled_from(['"model"', '"mod\\u0065l"', '"\\u006Dodel"', '"Model"', '"\\u004dODEL"',
                        '"messages"', '"x"'])


@settings(max_examples=300, deadline=None)
@given(first=st.text(max_size=8), rest=st.lists(st.tuples(KEYS, JSON), max_size=4))
def test_a_peeked_model_is_the_one_a_parser_reads(first: str, rest: list[tuple[str, object]]
                                                   ) -> None:
    """Whatever else the body holds, a peeked model is never another than the one the
    upstream's parser goes by (the last of duplicate keys, escapes decoded; in Go, of any
    letter case), unless that one is an object, which names no model."""
    raw = ('{"model":' + json.dumps(first)
           + "".join(f",{key}:{json.dumps(value)}" for key, value in rest) + "}").encode()
    peeked = peek_model(raw)
    as_go = [value for key, value in json.loads(raw, object_pairs_hook=Object)
             if key.lower() == "model"][-1]
    for read in (orjson.loads(raw)["model"], as_go):
        assert peeked is None or peeked == read or isinstance(read, (dict, Object))
