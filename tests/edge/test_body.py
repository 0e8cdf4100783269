"""Reading a body's model without parsing it (``peek_model``): only when that is safe."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.edge.body import names_model_twice, peek_model

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
    | st.dictionaries(st.sampled_from(["model", "Model", "a"]), inner, max_size=3),
    max_leaves=8)
KEYS = st.sampled_from(['"model"', '"mod\\u0065l"', '"\\u006Dodel"', '"Model"', '"\\u004dODEL"',
                        '"messages"', '"x"'])
SPACE = st.sampled_from(["", " ", "\n\t", "\r\n "])


class Object(list[tuple[str, object]]):
    """A JSON object read as its pairs, every duplicate key kept."""


def readings(raw: bytes) -> list[object]:
    """The top-level model as parsers read it: orjson and most others (the last of
    duplicate keys), gjson and simdjson (the first), Go's encoding/json (the last, in any
    letter case)."""
    pairs = json.loads(raw, object_pairs_hook=Object)
    named = [value for key, value in pairs if key == "model"]
    as_go = [value for key, value in pairs if key.lower() == "model"]
    return [orjson.loads(raw)["model"], named[0], as_go[-1]]


@settings(max_examples=400, deadline=None)
@given(first=st.text(max_size=8), space=SPACE,
       rest=st.lists(st.tuples(KEYS, SPACE, JSON), max_size=4))
def test_a_peeked_model_is_the_one_every_parser_reads(
        first: str, space: str, rest: list[tuple[str, str, object]]) -> None:
    """Whatever else the body holds, a peeked model is the one the upstream's parser goes
    by, whichever of the usual rules it follows, unless that one is an object (which
    names no model); and a body that parsers may read two ways is seen as such."""
    raw = ("{" + space + '"model"' + space + ":" + json.dumps(first)
           + "".join(f",{key}{gap}:{gap}{json.dumps(value)}" for key, gap, value in rest)
           + "}").encode()
    peeked, read = peek_model(raw), readings(raw)
    for model in read:
        assert peeked is None or peeked == model or isinstance(model, (dict, Object))
    strings = {str(m) for m in read if not isinstance(m, (dict, Object))}
    assert len(strings) <= 1 or names_model_twice(raw)
