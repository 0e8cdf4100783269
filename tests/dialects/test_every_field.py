"""Every field of a rich request or upstream answer, one at a time, set to each JSON type
in turn (and removed): the request is taken or refused with a 400, the answer decodes or
fails as a ProxyError. The exhaustive counterpart of the random search in
test_properties.py: a field missed by chance there is tried here for sure."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.errors import InvalidRequest, ProxyError
from tests.dialects.pipeline import check_events, run_decoder, take_anthropic, take_openai
from tests.dialects.strategies import WRONG_TYPES

REMOVED = object()
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
PDF = {"type": "base64", "media_type": "application/pdf", "data": "QUJD"}

ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-x", "max_tokens": 20000, "stream": True, "temperature": 0.5,
    "top_p": 0.9, "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc"},
               {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "QUJD"}},
            {"type": "image", "source": {"type": "url", "url": "https://e.x/a.png"}},
            {"type": "document", "source": PDF, "title": "A"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "plain"}},
            {"type": "document", "source": {"type": "content", "content": [
                {"type": "text", "text": "inside"}]}},
            {"type": "document", "source": {"type": "url", "url": "https://e.x/a.pdf"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "a"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False, "content": [
                {"type": "text", "text": "found"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "QUJD"}},
                {"type": "document", "source": PDF}]},
            {"type": "tool_reference", "tool_name": "search"},
            {"type": "text", "text": "go on"}]},
        {"role": "system", "content": "later system"},
        {"role": "assistant", "content": "prefill "}],
    "tools": [{"name": "search", "description": "find", "input_schema": SCHEMA},
              {"type": "web_search_20250305", "name": "web_search"},
              {"name": "DeferredToolPlaceholder", "defer_loading": True}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 5000},
    "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": SCHEMA}},
    "metadata": {"user_id": "user_1"},
}

OPENAI_REQUEST: dict[str, Any] = {
    "model": "gpt-x", "max_completion_tokens": 500, "max_tokens": 400, "stream": True,
    "stream_options": {"include_usage": True}, "temperature": 1.5, "top_p": 0.9,
    "stop": ["END"], "n": 1, "seed": 3, "user": "u1", "parallel_tool_calls": False,
    "reasoning_effort": "high", "modalities": ["text"],
    "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": SCHEMA}},
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Really."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
            {"type": "image_url", "image_url": {"url": "https://e.x/a.png", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,QUJD",
                                      "filename": "a.pdf"}},
            {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}]},
        {"role": "assistant", "content": "calling", "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "search", "arguments": '{"q": "a"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "found"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "search", "arguments": '{"q": "b"}'}},
        {"role": "function", "name": "search", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": "go on"}],
    "tools": [{"type": "function", "function": {"name": "search", "description": "find",
                                                "parameters": SCHEMA}}],
    "tool_choice": {"type": "function", "function": {"name": "search"}},
}

OPENAI_STREAM: list[Any] = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]},
    {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
    {"choices": [{"index": 0, "delta": {"content": " there"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "type": "function",
         "function": {"name": "f", "arguments": '{"a"'}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 1, "id": "c2", "type": "function",
         "function": {"name": "g", "arguments": "{"}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": ": 1}"}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 1, "function": {"arguments": "}"}}]}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                              "prompt_tokens_details": {"cached_tokens": 2}}},
]

OPENAI_COMPLETION: dict[str, Any] = {
    "id": "x", "object": "chat.completion",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Hi", "reasoning_content": "think",
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'}}]}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5},
}

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_x", "type": "message", "role": "assistant", "model": "claude-x",
    "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xx"},
                {"type": "text", "text": "Hi"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2},
}


def anthropic_stream(message: dict[str, Any]) -> list[Any]:
    """The stream the API would send for ``message``."""
    frames: list[Any] = [{"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": {"input_tokens": 10}}}]
    for index, block in enumerate(message["content"]):
        empty = {**block, "text": "", "thinking": "", "input": {}}
        frames.append({"type": "content_block_start", "index": index, "content_block": empty})
        if block["type"] == "text":
            frames.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": block["text"]}})
        elif block["type"] == "thinking":
            frames += [{"type": "content_block_delta", "index": index,
                        "delta": {"type": "thinking_delta", "thinking": block["thinking"]}},
                       {"type": "content_block_delta", "index": index,
                        "delta": {"type": "signature_delta", "signature": "sig"}}]
        elif block["type"] == "tool_use":
            frames.append({"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        frames.append({"type": "content_block_stop", "index": index})
    frames += [{"type": "ping"},
               {"type": "message_delta", "delta": {"stop_reason": "tool_use",
                                                   "stop_sequence": None},
                "usage": {"output_tokens": 5}},
               {"type": "message_stop"}]
    return frames


def variants(value: Any) -> Iterator[tuple[str, Any, Any]]:
    """(path, new value, a copy of ``value`` with that one field changed), for every field
    at every depth and every wrong type (and removal)."""
    for path in _paths(value):
        for wrong in (*WRONG_TYPES, REMOVED):
            changed = copy.deepcopy(value)
            parent = changed
            for key in path[:-1]:
                parent = parent[key]
            if wrong is REMOVED:
                if not isinstance(parent, dict):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = wrong
            yield ".".join(map(str, path)), wrong, changed


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in pairs:
        yield (*prefix, key)
        if isinstance(child, dict | list):
            yield from _paths(child, (*prefix, key))


def failures(value: Any, attempt: Callable[[Any], None]) -> list[str]:
    """What each variant raised that it should not have: a request may only be refused
    with a 400, an upstream answer may only fail as a ProxyError."""
    allowed: type[Exception] = InvalidRequest if attempt in _REQUESTS else ProxyError
    found = []
    for path, wrong, changed in variants(value):
        try:
            attempt(changed)
        except allowed:
            pass
        except Exception as exc:
            shown = "removed" if wrong is REMOVED else repr(wrong)
            found.append(f"{path} = {shown}: {type(exc).__name__}: {exc}")
    return found


def take_both_anthropic(body: Any) -> None:
    take_anthropic(body)
    take_anthropic(body, for_counting=True)


def decode_openai_stream(frames: list[Any]) -> None:
    decoder = OpenAIStreamDecoder(message_id="msg_1", model="m", input_tokens=3)
    texts = [*(json.dumps(f) for f in frames), "[DONE]"]
    run_decoder(decoder, [[t] for t in texts])


def decode_anthropic_stream(frames: list[Any]) -> None:
    decoder = AnthropicStreamDecoder(message_id="msg_1", model="m", input_tokens=3)
    run_decoder(decoder, [[json.dumps(f) for f in frames]])


def decode_openai_completion(body: Any) -> None:
    decoder = OpenAIStreamDecoder(message_id="msg_1", model="m", input_tokens=3)
    check_events(decoder.feed_completion(body), complete=True)


def decode_anthropic_message(body: Any) -> None:
    decoder = AnthropicStreamDecoder(message_id="msg_1", model="m", input_tokens=3)
    check_events(decoder.feed_message(body), complete=True)


_REQUESTS = (take_both_anthropic, take_openai)


@pytest.mark.parametrize(("value", "attempt"), [
    (ANTHROPIC_REQUEST, take_both_anthropic),
    (OPENAI_REQUEST, take_openai),
    (OPENAI_STREAM, decode_openai_stream),
    (anthropic_stream(ANTHROPIC_MESSAGE), decode_anthropic_stream),
    (OPENAI_COMPLETION, decode_openai_completion),
    (ANTHROPIC_MESSAGE, decode_anthropic_message),
], ids=["anthropic-request", "openai-request", "openai-stream", "anthropic-stream",
        "openai-completion", "anthropic-message"])
def test_every_field_mistyped(value: Any, attempt: Callable[[Any], None]) -> None:
    attempt(value)  # the rich original itself is fine
    assert failures(value, attempt) == []
