"""ObjectProgress: after every fragment, ``complete`` is exactly whether the text so far
parses as one JSON object: for objects, other JSON, broken JSON, cut anywhere."""

from __future__ import annotations

import itertools
import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from proxy.dialects.json_progress import ObjectProgress
from tests.dialects.strategies import BOUNDED, json_values

# JSON texts, mostly objects (pretty and compact, strings full of braces, quotes and
# escapes), and some of them spoiled.
strings = st.text(alphabet='{}[]"\\:, abnu0', max_size=8)
objects = st.dictionaries(strings, st.one_of(json_values, strings), max_size=4)
texts = st.one_of(
    objects.map(json.dumps), objects.map(lambda o: json.dumps(o, indent=1)),
    objects.map(lambda o: json.dumps(o, ensure_ascii=False)),
    json_values.map(json.dumps),
    st.tuples(objects.map(json.dumps), st.text(alphabet='{}[]" \\x', max_size=3)).map(
        lambda t: t[0] + t[1]),
    st.text(alphabet='{}[]":,\\ a1', max_size=20))


def is_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


@BOUNDED
@given(texts, st.data())
def test_complete_is_exactly_a_whole_object_so_far(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    edges = [0, *cuts, len(text)]
    progress = ObjectProgress()
    for a, b in itertools.pairwise(edges):
        progress.feed(text[a:b])
        assert progress.complete == is_object(text[:b]), (text, text[:b])
