"""Test helpers shared by the transcoder and end-to-end tests.

* ``splits``: the same bytes whole, one byte at a time, and in random pieces (h11's trick);
* ``transcode_openai``: recorded OpenAI stream bytes -> canonical events -> Anthropic SSE;
* ``check_anthropic_stream``: a validator of the Anthropic event grammar (protocols.md 1.5)
  that every translated stream in the suite goes through;
* ``transcode_anthropic`` and ``check_openai_stream``: the same pair the other way round
  (Anthropic stream bytes -> OpenAI chunks, and the OpenAI chunk grammar, 2.4 and 3);
* ``unavailable``: a missing prerequisite (a CLI, a server, a package) skips a test on a
  laptop and fails it under CI, which must have installed it;
* ``reachable``: whether an object still holds another (a stream, a request's body).
"""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest

from proxy.canonical import Event
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder
from proxy.dialects.openai.stream_encode import error_frame as openai_error_frame
from proxy.errors import ProxyError
from proxy.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).parent / "fixtures"


def end_child(proc: subprocess.Popen[Any], kill: bool = False) -> int:
    """End a child process a test started (SIGTERM, or SIGKILL when ``kill`` or when it
    does not stop within 10 s), close its pipes, and return its exit code."""
    if proc.poll() is None and kill:
        proc.kill()
    elif proc.poll() is None:
        proc.terminate()
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return code


def unavailable(message: str) -> NoReturn:
    """Skip for want of a prerequisite; under CI (``CI`` set) fail instead: a skipped test
    there would pass a run that tested nothing."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: CI must install it.)")
    pytest.skip(message)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def splits(data: bytes, seeds: int = 5) -> list[list[bytes]]:
    """Whole, byte by byte, and ``seeds`` random splittings of ``data``."""
    ways = [[data], [data[i:i + 1] for i in range(len(data))]]
    for seed in range(seeds):
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 40))))
        ways.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return ways


def decode_sse(chunks: list[bytes]) -> tuple[list[SSEEvent], bool]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events, decoder.truncated


def transcode_openai(chunks: list[bytes], *, input_tokens: int = 100,
                     tool_names: dict[str, str] | None = None
                     ) -> tuple[list[Event], bytes, Exception | None]:
    """Feed OpenAI stream bytes chunk by chunk; return events, Anthropic SSE bytes, and the
    exception that ended the stream, if one did."""
    decoder = OpenAIStreamDecoder(message_id="msg_test", model="client-model",
                                  input_tokens=input_tokens, tool_names=tool_names)
    return _transcode(chunks, decoder, AnthropicStreamEncoder())


def _transcode(chunks: list[bytes], decoder: Any, encoder: Any
               ) -> tuple[list[Event], bytes, Exception | None]:
    """SSE decoder -> stream decoder -> encoder, read by read, as a backend and the edge
    drive them."""
    sse = SSEDecoder()
    events: list[Event] = []
    out = bytearray()
    try:
        for chunk in chunks:
            batch = decoder.feed(sse.frames(chunk))
            events += batch
            out += encoder.encode(batch)
            if decoder.done or decoder.failed:
                break
        if not decoder.done:
            batch = decoder.finish(truncated=sse.truncated)
            events += batch
            out += encoder.encode(batch)
    except Exception as exc:  # the test decides which exceptions are right
        return events, bytes(out), exc
    return events, bytes(out), None


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events, truncated = decode_sse([raw])
    assert not truncated, "the stream ended inside a frame"
    parsed = []
    for event in events:
        assert event.event is not None, f"frame without an event: line: {event.data[:80]}"
        data = orjson.loads(event.data)
        assert data["type"] == event.event, (event.event, data["type"])
        parsed.append((event.event, data))
    return parsed


def check_anthropic_stream(frames: list[tuple[str, dict[str, Any]]], *,
                           complete: bool = True) -> None:
    """Assert the Anthropic event grammar; ``complete=False`` for streams cut by an error,
    which must then end with ``error`` and never carry ``message_stop``."""
    names = [name for name, _ in frames if name != "ping"]
    assert names and names[0] == "message_start", names[:3]
    start = frames[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert isinstance(start["usage"]["input_tokens"], int)
    open_index, next_index, kinds = None, 0, {}
    server_calls: dict[str, str] = {}  # server_tool_use id -> tool name
    for name, data in frames[1:]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index, (open_index, data)
            open_index, next_index = data["index"], next_index + 1
            kinds[open_index] = data["content_block"]["type"]
            if kinds[open_index] in ("tool_use", "server_tool_use"):
                assert data["content_block"]["input"] == {}
            if kinds[open_index] == "server_tool_use":
                _check_server_tool_use(data["content_block"], server_calls)
            elif kinds[open_index] in _RESULT_BLOCKS:
                _check_server_tool_result(data["content_block"], server_calls)
        elif name == "content_block_delta":
            assert data["index"] == open_index, ("delta outside its block", data)
            allowed = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                       "tool_use": {"input_json_delta"}, "server_tool_use": {"input_json_delta"},
                       }.get(kinds[open_index], set())  # result blocks come whole: no deltas
            assert data["delta"]["type"] in allowed, data
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta inside a block"
            assert isinstance(data["usage"]["output_tokens"], int)
            counts = data["usage"].get("server_tool_use")
            if counts is not None:  # present only when a server tool ran
                assert set(counts) == {"web_search_requests", "web_fetch_requests"}, counts
                assert all(isinstance(n, int) and n >= 0 for n in counts.values()), counts
                assert any(counts.values()), counts
            assert data["delta"]["stop_reason"] in {"end_turn", "max_tokens", "stop_sequence",
                                                    "tool_use", "pause_turn", "refusal"}
    if complete:
        assert names[-2:] == ["message_delta", "message_stop"], names[-3:]
        assert names.count("message_delta") == 1
    else:
        assert names[-1] == "error" and "message_stop" not in names, names[-3:]


_RESULT_BLOCKS = {"web_search_tool_result": "web_search", "web_fetch_tool_result": "web_fetch"}
_SEARCH_ERRORS = {"invalid_tool_input", "unavailable", "max_uses_exceeded", "too_many_requests",
                  "query_too_long", "request_too_large"}
_FETCH_ERRORS = {"invalid_tool_input", "url_too_long", "url_not_allowed",
                 "url_not_in_prior_context", "url_not_accessible", "unsupported_content_type",
                 "too_many_requests", "max_uses_exceeded", "unavailable", "content_too_large"}


def _check_server_tool_use(block: dict[str, Any], server_calls: dict[str, str]) -> None:
    assert set(block) <= {"type", "id", "name", "input", "caller"}, block
    assert block["id"].startswith("srvtoolu_") and block["id"] not in server_calls, block
    assert block["name"] in ("web_search", "web_fetch"), block
    server_calls[block["id"]] = block["name"]


def _check_server_tool_result(block: dict[str, Any], server_calls: dict[str, str]) -> None:
    """A result answers an earlier server_tool_use of its own tool, and has the SDK's shape."""
    kind = block["type"]
    assert server_calls.get(block["tool_use_id"]) == _RESULT_BLOCKS[kind], (block, server_calls)
    content = block["content"]
    if isinstance(content, dict) and content.get("type") == f"{kind}_error":
        assert set(content) == {"type", "error_code"}, content
        codes = _SEARCH_ERRORS if kind == "web_search_tool_result" else _FETCH_ERRORS
        assert content["error_code"] in codes, content
    elif kind == "web_search_tool_result":
        assert isinstance(content, list), content
        for hit in content:
            assert hit["type"] == "web_search_result", hit
            assert all(isinstance(hit[k], str) for k in ("url", "title", "encrypted_content"))
            assert hit.get("page_age") is None or isinstance(hit["page_age"], str), hit
    else:
        assert content["type"] == "web_fetch_result" and isinstance(content["url"], str)
        document = content["content"]
        assert document["type"] == "document", document
        assert document["source"]["type"] == "text", document
        assert document["source"]["media_type"] == "text/plain", document
        assert isinstance(document["source"]["data"], str), document


def transcode_anthropic(chunks: list[bytes], *, include_usage: bool = True,
                        input_tokens: int = 100
                        ) -> tuple[list[Event], bytes, Exception | None]:
    """Feed Anthropic stream bytes chunk by chunk; return events, OpenAI SSE bytes, and the
    exception that ended the stream, if one did. As the edge does, a ``ProxyError`` that
    ends the stream is written as the OpenAI in-stream error frame after what came before."""
    decoder = AnthropicStreamDecoder(message_id="chatcmpl-test", model="client-model",
                                     input_tokens=input_tokens)
    encoder = OpenAIStreamEncoder(chunk_id="chatcmpl-test", model="client-model",
                                  include_usage=include_usage)
    events, out, error = _transcode(chunks, decoder, encoder)
    if isinstance(error, ProxyError):
        out += openai_error_frame(error.kind, error.message)
    return events, out, error


_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def check_openai_stream(raw: bytes, *, complete: bool = True,
                        include_usage: bool = True) -> list[dict[str, Any]]:
    """Assert the OpenAI chunk grammar (protocols.md 2.4, 3); return the chunk objects.
    ``complete=False`` for streams cut by an error: they end with a ``{"error": …}`` frame,
    and carry no ``[DONE]``, no finish_reason and no usage chunk."""
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        # data-only events; comments (": ping") are fine, an event: line or a data-less
        # event is not (the SDK crashes on the latter)
        assert not line or line.startswith((b"data: ", b":")), f"not a data line: {line[:80]!r}"
    events, truncated = decode_sse([raw])
    assert not truncated, "the stream ended inside a frame"
    assert events, "an empty stream"
    assert all(e.event is None for e in events)
    datas = [e.data for e in events]
    done = [i for i, d in enumerate(datas) if d == "[DONE]"]
    if complete:
        assert done == [len(datas) - 1], f"[DONE] must come once, last: {done}"
        datas = datas[:-1]
    else:
        assert not done, "[DONE] in a stream that failed"
        error = orjson.loads(datas[-1])
        assert set(error) == {"error"}, error
        assert isinstance(error["error"]["message"], str) and error["error"]["type"], error
        datas = datas[:-1]
    chunks = [orjson.loads(d) for d in datas]
    assert chunks, "no chunks"
    first = chunks[0]
    finishes: list[int] = []
    next_call = 0
    for n, chunk in enumerate(chunks):
        assert isinstance(chunk, dict) and "error" not in chunk, chunk
        assert chunk["object"] == "chat.completion.chunk", chunk
        for key in ("id", "created", "model"):
            assert chunk[key] == first[key], (key, first[key], chunk[key])
        assert isinstance(chunk["created"], int) and not isinstance(chunk["created"], bool)
        if chunk["choices"] == []:  # the usage chunk
            assert complete and include_usage, "a usage chunk nobody asked for"
            assert n == len(chunks) - 1, "the usage chunk must be last before [DONE]"
            usage = chunk["usage"]
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                assert isinstance(usage[key], int), usage
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
            continue
        assert chunk.get("usage") is None, "usage on a chunk with choices is lost by the SDK"
        (choice,) = chunk["choices"]
        assert choice["index"] == 0
        delta = choice["delta"]
        assert isinstance(delta, dict)
        assert ("role" in delta) == (n == 0), f"role only in the first delta (chunk {n})"
        if n == 0:
            assert delta["role"] == "assistant"
        if finishes:
            assert not delta, "a delta after the finish chunk"
        for call in delta.get("tool_calls") or ():
            index = call["index"]
            assert isinstance(index, int) and 0 <= index <= next_call, (index, next_call)
            if index == next_call:  # the call's first piece: id, type and name, once
                next_call += 1
                assert isinstance(call["id"], str) and call["id"], call
                assert call["type"] == "function", call
                assert isinstance(call["function"]["name"], str) and call["function"]["name"]
            else:
                assert set(call) == {"index", "function"}, call
                assert set(call["function"]) == {"arguments"}, call
            assert isinstance(call["function"].get("arguments", ""), str), call
        if choice.get("finish_reason") is not None:
            assert choice["finish_reason"] in _FINISH_REASONS, choice
            finishes.append(n)
    if complete:
        assert len(finishes) == 1, f"exactly one finish_reason, got {len(finishes)}"
        has_usage = chunks[-1]["choices"] == []
        assert has_usage == include_usage, "usage chunk missing" if include_usage else ""
        last_choice = len(chunks) - 2 if has_usage else len(chunks) - 1
        assert finishes == [last_choice], "the finish chunk must be the last with a choice"
        for index, arguments in _arguments(chunks).items():
            # clients json.loads() the joined arguments: "" is not an object, "{}" is
            try:
                value = orjson.loads(arguments)
            except orjson.JSONDecodeError:
                value = None
            assert isinstance(value, dict), f"tool call {index} arguments {arguments!r}"
    else:
        assert not finishes, "a finish_reason in a stream that failed"
    return chunks


def _arguments(chunks: list[dict[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                out[call["index"]] = (out.get(call["index"], "")
                                      + call["function"].get("arguments", ""))
    return out


def reachable(root: object, target: object, limit: int = 20_000) -> bool:
    """Whether ``target`` can be reached from ``root`` through references other than
    modules' globals (every function reaches those)."""
    seen = {id(root)} | {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    todo = [root]
    while todo and len(seen) < limit:
        for ref in gc.get_referents(todo.pop()):
            if ref is target:
                return True
            if id(ref) not in seen and not isinstance(ref, (str, bytes, int, float, type)):
                seen.add(id(ref))
                todo.append(ref)
    return False
