"""Reading a body's model without parsing it (``peek_model``): only when that is safe."""

from __future__ import annotations

import pytest

from proxy.edge.body import peek_model


@pytest.mark.parametrize(("raw", "model"), [
    (b'{"model":"claude-x","messages":[]}', "claude-x"),
    (b' {\n "model" : "gpt-\\u00e9\\"q" , "messages": []}', 'gpt-é"q'),
    # Not the first key, named twice (the upstream may read the last), nested, or not a
    # string: parse it all instead.
    (b'{"messages":[],"model":"m"}', None),
    (b'{"model":"cheap","messages":[],"model":"dear"}', None),
    (b'{"model":"m","tools":[{"input_schema":{"properties":{"model":{}}}}]}', None),
    (b'{"model":5}', None), (b'{"model":"open', None), (b'[]', None), (b'', None),
])
def test_peek_model(raw: bytes, model: str | None) -> None:
    assert peek_model(raw) == model
