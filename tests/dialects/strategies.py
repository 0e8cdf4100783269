"""Hypothesis strategies for hostile input: request bodies of both dialects and upstream
streams of both.

Each is built well-formed first, with varied content, and then ``mutated``: a few of its
fields, anywhere in it, replaced by any JSON value at all, or removed. The parsers stop at
the first bad field, so this reaches every field at every depth with the rest valid: the
fields a client or an upstream may get wrong are tried one at a time and a few together.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Strategy = st.SearchStrategy[Any]

# Bounded and derandomized, so the suite stays fast and a failure is the same on every run;
# PROPERTY_EXAMPLES=5000 searches deeper, afresh each time.
_DEEP = os.environ.get("PROPERTY_EXAMPLES")
BOUNDED = settings(max_examples=int(_DEEP or 200), derandomize=not _DEEP, deadline=None,
                   database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), text)
json_values: Strategy = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(text, inner, max_size=3)),
    max_leaves=8)


def either(*plausible: Strategy) -> Strategy:
    return st.one_of(*plausible)


def obj(required: dict[str, Strategy] | None = None, **optional: Strategy) -> Strategy:
    return st.fixed_dictionaries(required or {}, optional=optional)


def one(*values: Any) -> Strategy:
    return st.sampled_from(values)


def dumps(value: Any) -> str:
    return json.dumps(value)  # the stdlib writes any int; orjson stops at 64 bits


@st.composite
def mutated(draw: st.DrawFn, strategy: Strategy, most: int = 3) -> Any:
    """A value of ``strategy`` with up to ``most`` of its fields (at any depth) replaced by
    any JSON value, or removed."""
    value = copy.deepcopy(draw(strategy))
    for _ in range(draw(st.integers(0, most))):
        places = _places(value)
        if not places:
            break
        parent, key = draw(st.sampled_from(places))
        if isinstance(parent, dict) and draw(st.integers(0, 3)) == 0:
            del parent[key]
        else:
            # a copy: the next edit may reach inside it, and WRONG_TYPES must not change
            parent[key] = copy.deepcopy(draw(st.one_of(wrong_types, json_values)))
    return value


# One of each JSON type, and the values that catch careless arithmetic.
WRONG_TYPES = (None, True, 5, -1, 1.5, 2**64, "x", "", [], [1], {}, {"a": 1})
wrong_types = st.sampled_from(WRONG_TYPES)


def _places(value: Any) -> list[tuple[Any, Any]]:
    places: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            places.append((item, key))
            if isinstance(child, dict | list):
                stack.append(child)
    return places


words = st.one_of(st.sampled_from(["", " ", "x", "hello", "f", "g"]), text)
counts = st.integers(0, 100_000)

# ------------------------------------------------------------------- Anthropic requests

schemas = st.one_of(st.just({"type": "object"}), st.dictionaries(text, json_values, max_size=3))
_a_source = one(
    {"type": "base64", "media_type": "application/pdf", "data": "QUJD"},
    {"type": "base64", "media_type": "text/plain", "data": "aGk="},
    {"type": "base64", "media_type": "image/png", "data": "QUJD"},
    {"type": "text", "media_type": "text/plain", "data": "plain"},
    {"type": "url", "url": "https://e.x/a.pdf"},
    {"type": "content", "content": [{"type": "text", "text": "inside"}]},
    {"type": "file", "file_id": "file_1"})
_tool_ids = one("toolu_1", "a.b:c", "call|2")


def _a_blocks(inner: Strategy) -> Strategy:
    return st.one_of(
        obj({"type": st.just("text"), "text": words}, cache_control=st.just({"type": "ephemeral"})),
        obj({"type": st.just("image"), "source": _a_source}),
        obj({"type": st.just("document"), "source": _a_source}, title=words),
        obj({"type": st.just("tool_use"), "id": _tool_ids, "name": words},
            input=st.dictionaries(text, json_values, max_size=3)),
        obj({"type": st.just("tool_result"), "tool_use_id": _tool_ids},
            content=st.one_of(words, st.lists(inner, max_size=2)), is_error=st.booleans()),
        obj({"type": st.just("thinking"), "thinking": words}, signature=words),
        obj({"type": st.just("tool_reference"), "tool_name": words}),
        obj({"type": one("redacted_thinking", "server_tool_use", "search_result")},
            data=words))


_a_block = _a_blocks(_a_blocks(obj({"type": st.just("text"), "text": words})))
_a_message = obj({"role": one("user", "assistant", "system")},
                 content=st.one_of(words, st.lists(_a_block, max_size=4)))
_a_tool = st.one_of(
    obj({"name": words}, description=words, input_schema=schemas,
        defer_loading=st.booleans()),
    obj({"type": one("web_search_20250305", "bash_20250124"), "name": words}))
_anthropic_bodies = obj(
    {"model": words, "max_tokens": counts, "messages": st.lists(_a_message, max_size=4)},
    system=st.one_of(words, st.lists(obj({"type": st.just("text"), "text": words}),
                                     max_size=2)),
    stream=st.booleans(), temperature=st.floats(0, 1), top_p=st.floats(0, 1),
    stop_sequences=st.lists(words, max_size=2), tools=st.lists(_a_tool, max_size=3),
    tool_choice=obj({"type": one("auto", "any", "tool", "none")}, name=words,
                    disable_parallel_tool_use=st.booleans()),
    thinking=obj({"type": one("enabled", "disabled", "adaptive")}, budget_tokens=counts),
    output_config=obj(effort=one("low", "medium", "high", "max"),
                      format=obj({"type": st.just("json_schema")}, schema=schemas)),
    metadata=obj(user_id=words),
)
anthropic_bodies = mutated(_anthropic_bodies)

# ---------------------------------------------------------------------- OpenAI requests

_o_part = st.one_of(
    obj({"type": st.just("text"), "text": words}),
    obj({"type": st.just("image_url"), "image_url": obj(
        {"url": one("data:image/png;base64,QUJD", "https://e.x/a.png",
                    "data:image/tiff;base64,AA", "ftp://x")}, detail=one("low", "auto"))}),
    obj({"type": st.just("file"), "file": obj(
        {"file_data": one("data:application/pdf;base64,QUJD", "data:text/plain;base64,aGk=",
                          "data:text/plain;base64,/w==", "data:image/png;base64,AA")},
        filename=words)}),
    obj({"type": one("input_audio", "refusal")}, refusal=words))
_o_content = st.one_of(words, st.lists(_o_part, max_size=3))
_arguments = st.one_of(one("", "{}", '{"a": 1}', "[1]", "{", "null", '"s"'),
                       st.dictionaries(text, json_values, max_size=2).map(dumps))
_o_call = obj({"id": one("call_1", "a.b", ""), "type": st.just("function"),
               "function": obj({"name": words, "arguments": _arguments})})
_o_message = st.one_of(
    obj({"role": one("system", "developer"), "content": _o_content}),
    obj({"role": st.just("user"), "content": _o_content}, name=words),
    obj({"role": st.just("assistant")}, content=st.one_of(st.none(), _o_content),
        tool_calls=st.lists(_o_call, max_size=2), refusal=words,
        function_call=obj({"name": words, "arguments": _arguments})),
    obj({"role": one("tool", "function"), "content": _o_content},
        tool_call_id=one("call_1", "a.b"), name=words))
_o_function = obj({"name": words}, description=words, parameters=schemas,
                  strict=st.booleans())
_openai_bodies = obj(
    {"model": words, "messages": st.lists(_o_message, min_size=1, max_size=4)},
    max_tokens=counts, max_completion_tokens=counts,
    stop=st.one_of(words, st.lists(words, max_size=2)), temperature=st.floats(0, 2),
    top_p=st.floats(0, 1),
    tools=st.lists(obj({"type": st.just("function"), "function": _o_function}), max_size=2),
    functions=st.lists(_o_function, max_size=2),
    tool_choice=st.one_of(
        one("auto", "required", "none"),
        obj({"type": st.just("function"), "function": obj({"name": words})}),
        obj({"type": st.just("allowed_tools"),
             "allowed_tools": obj({"mode": one("auto", "required")},
                                  tools=st.just([{"type": "function",
                                                  "function": {"name": "f"}}]))})),
    function_call=st.one_of(one("auto", "none"), obj({"name": words})),
    parallel_tool_calls=st.booleans(),
    response_format=st.one_of(
        obj({"type": one("text", "json_object")}),
        obj({"type": st.just("json_schema"),
             "json_schema": obj({"name": words, "schema": schemas}, strict=st.booleans())})),
    reasoning_effort=one("none", "minimal", "low", "high", "max"),
    reasoning=obj(effort=one("low", "high")), user=words, safety_identifier=words,
    stream=st.booleans(), stream_options=obj(include_usage=st.booleans()),
    n=st.just(1), logprobs=st.just(False), modalities=st.just(["text"]), seed=counts,
)
openai_bodies = mutated(_openai_bodies)

# ------------------------------------------------------------------ upstream: OpenAI

# Argument fragments that open and close objects and strings in every way, escapes too.
fragments = one("{", "}", '"a"', ":", "1", ",", '{"a": "}"}', '{"b": [1, {}]}', "", " ",
                '"\\', '\"', "]", "[", "}{", '"x}', "null")
finish_reasons = one("stop", "length", "tool_calls", "content_filter", "function_call")
_o_usage = obj({"prompt_tokens": counts, "completion_tokens": counts},
               prompt_tokens_details=obj(cached_tokens=counts, cache_write_tokens=counts),
               prompt_cache_hit_tokens=counts)
_o_piece = st.one_of(
    obj({"index": st.integers(-1, 2), "id": one("c1", "c2"), "type": st.just("function"),
         "function": obj({"name": one("f", "g"), "arguments": fragments})}),
    obj({"index": st.integers(-1, 2), "function": obj({"arguments": fragments})}),
    obj({"id": one("c1", "c2"), "function": obj({"arguments": fragments})}, name=words))
_o_delta = st.one_of(obj({"content": text}), obj({"reasoning_content": text}),
                     obj({"reasoning": text}), obj({"refusal": text}),
                     obj({"tool_calls": st.lists(_o_piece, min_size=1, max_size=2)}),
                     obj({"content": st.none(), "role": st.just("assistant")}))
_o_chunk = obj({"choices": st.lists(obj({"index": st.just(0), "delta": _o_delta}),
                                    min_size=1, max_size=1)})


@st.composite
def _openai_stream(draw: st.DrawFn) -> list[Any]:
    """A role chunk, deltas of every kind (parallel tool calls interleaved), a finish, the
    usage chunk and [DONE]."""
    frames: list[Any] = [{"choices": [{"index": 0, "delta": {"role": "assistant",
                                                             "content": ""}}]}]
    frames += draw(st.lists(_o_chunk, max_size=8))
    frames.append({"choices": [{"index": 0, "delta": {},
                                "finish_reason": draw(finish_reasons)}]})
    frames.append({"choices": [], "usage": draw(_o_usage)})
    frames.append("[DONE]")
    return frames


openai_frames = st.one_of(_o_chunk, _o_chunk.map(lambda c: {**c, "usage": {}}),
                          st.just("[DONE]"), obj({"error": json_values}), text)
openai_streams = st.builds(lambda frames: [f if isinstance(f, str) else dumps(f)
                                           for f in frames],
                           st.deferred(lambda: _stream_edits(_openai_stream(), openai_frames)))
_o_message_body = obj({"role": st.just("assistant")}, content=st.one_of(st.none(), text),
                      reasoning_content=text, refusal=st.none(),
                      tool_calls=st.lists(obj({"id": one("c1", "c2"), "type": st.just(
                          "function"), "function": obj({"name": one("f", "g"),
                                                        "arguments": _arguments})}),
                          max_size=2))
openai_completions = mutated(obj({"id": words, "object": st.just("chat.completion"),
                                  "choices": st.lists(obj({"index": st.just(0),
                                                           "message": _o_message_body,
                                                           "finish_reason": finish_reasons}),
                                                      min_size=1, max_size=2)},
                                 usage=_o_usage))

# --------------------------------------------------------------- upstream: Anthropic

stop_reasons = one("end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal",
                   "pause_turn", None)
_a_usage = obj(input_tokens=counts, output_tokens=counts, cache_read_input_tokens=counts,
               cache_creation_input_tokens=counts)
_a_kinds = ("text", "thinking", "tool_use", "redacted_thinking", "server_tool_use")
_a_content_blocks = st.one_of(
    obj({"type": st.just("text"), "text": words}),
    obj({"type": st.just("thinking"), "thinking": words, "signature": words}),
    obj({"type": st.just("tool_use"), "id": _tool_ids, "name": words,
         "input": st.dictionaries(text, json_values, max_size=2)}),
    obj({"type": one("redacted_thinking", "server_tool_use"), "data": words}))
_DELTAS = {"text": ("text_delta", "text"), "thinking": ("thinking_delta", "thinking"),
           "tool_use": ("input_json_delta", "partial_json")}


@st.composite
def _anthropic_stream(draw: st.DrawFn) -> list[Any]:
    """message_start, blocks of every kind with their deltas, message_delta, message_stop."""
    frames: list[Any] = [{"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [],
        "usage": draw(_a_usage)}}]
    for index, kind in enumerate(draw(st.lists(st.sampled_from(_a_kinds), max_size=3))):
        block = {"type": kind, "id": "toolu_1", "name": "f", "text": "", "thinking": "",
                 "input": {}}
        frames.append({"type": "content_block_start", "index": index, "content_block": block})
        delta_type, field = _DELTAS.get(kind, ("input_json_delta", "partial_json"))
        pieces = fragments if kind != "text" else words
        for piece in draw(st.lists(pieces, max_size=3)):
            frames.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": delta_type, field: piece}})
        if kind == "thinking":
            frames.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": "sig"}})
        frames.append({"type": "content_block_stop", "index": index})
    if draw(st.booleans()):
        frames.insert(draw(st.integers(1, len(frames))), {"type": "ping"})
    frames += [{"type": "message_delta", "delta": {"stop_reason": draw(stop_reasons),
                                                   "stop_sequence": None},
                "usage": draw(_a_usage)}, {"type": "message_stop"}]
    return frames


anthropic_frames = st.one_of(
    obj({"type": st.just("content_block_start"), "index": st.integers(-1, 3),
         "content_block": _a_content_blocks}),
    obj({"type": st.just("content_block_delta"), "index": st.integers(-1, 3),
         "delta": obj({"type": one("text_delta", "input_json_delta", "thinking_delta",
                                   "signature_delta", "citations_delta")},
                      text=words, partial_json=fragments, thinking=words, signature=words)}),
    obj({"type": st.just("content_block_stop"), "index": st.integers(-1, 3)}),
    obj({"type": one("message_start", "message_delta", "message_stop", "ping", "new_kind")}),
    obj({"type": st.just("error"), "error": json_values}), text)
anthropic_streams = st.builds(lambda frames: [f if isinstance(f, str) else dumps(f)
                                              for f in frames],
                              st.deferred(lambda: _stream_edits(_anthropic_stream(),
                                                                anthropic_frames)))
anthropic_messages = mutated(obj(
    {"id": words, "type": st.just("message"), "role": st.just("assistant"),
     "content": st.lists(_a_content_blocks, max_size=3), "stop_reason": stop_reasons},
    stop_sequence=st.none(), usage=_a_usage))


@st.composite
def _stream_edits(draw: st.DrawFn, stream: Strategy, frames: Strategy) -> list[Any]:
    """A well-formed stream, then edited as a broken upstream would: fields of frames
    replaced or removed, frames dropped, others slipped in anywhere."""
    out = draw(stream)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(out) - 1)) if out else 0
        edit = draw(st.integers(0, 2))
        if edit == 0 and out:
            out[at] = draw(mutated(st.just(out[at]), most=1)) if not isinstance(
                out[at], str) else out[at]
        elif edit == 1 and out:
            out.pop(at)
        else:
            out.insert(draw(st.integers(0, len(out))), draw(frames))
    return out


@st.composite
def batches(draw: st.DrawFn, frames: list[str]) -> list[list[str]]:
    """The frames cut into the batches of successive reads, anywhere."""
    cuts = sorted(draw(st.lists(st.integers(0, len(frames)), max_size=4)))
    edges = [0, *cuts, len(frames)]
    return [frames[a:b] for a, b in itertools.pairwise(edges)]
