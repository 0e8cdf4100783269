"""OpenAI-shaped JSON bodies: a completion, an error, a model list (protocols.md 2.3-2.7).

Sans-I/O. Server tool blocks (web search and fetch run for the client) have no place in a
chat completion; what survives of them is the search results, as ``url_citation``
annotations on the answer (the shape OpenAI's own search models give).
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.canonical import CollectedMessage, Usage, WebSearchHit

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "api_error": "server_error",
    "overloaded": "server_error",
    "timeout": "timeout",
}
_ERROR_CODES = {"not_found": "model_not_found", "rate_limit": "rate_limit_exceeded",
                "request_too_large": "request_too_large", "authentication": "invalid_api_key"}


FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter",
                  "model_context_window_exceeded": "length"}


def usage_json(usage: Usage) -> dict[str, Any]:
    """OpenAI counts cached tokens inside prompt_tokens; Anthropic outside input_tokens."""
    prompt = (usage.input_tokens + usage.cache_read_input_tokens
              + usage.cache_creation_input_tokens)
    return {"prompt_tokens": prompt, "completion_tokens": usage.output_tokens,
            "total_tokens": prompt + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens,
                                      "cache_write_tokens": usage.cache_creation_input_tokens}}


def error_body(kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _ERROR_TYPES.get(kind, "server_error"),
                      "param": param, "code": _ERROR_CODES.get(kind)}}


def models_body(models: list[tuple[str, str]]) -> dict[str, Any]:
    """``models``: (id, display name) pairs. OpenAI's list has no display names; the Go
    claude-proxy's has, in this same shape, so they are kept (clients ignore the field)."""
    return {"object": "list", "data": [
        {"id": model_id, "object": "model", "created": 1735689600,
         "owned_by": "llm-dialect-proxy", "display_name": name}
        for model_id, name in models]}


def completion_body(message: CollectedMessage, *, completion_id: str,
                    created: int) -> dict[str, Any]:
    """A collected message as one ``chat.completion`` (protocols.md 2.3)."""
    text = "".join(b.text for b in message.blocks if b.kind == "text")
    thinking = "".join(b.text for b in message.blocks if b.kind == "thinking")
    calls = [{"id": b.tool_id, "type": "function",
              "function": {"name": b.tool_name, "arguments": orjson.dumps(b.tool_input).decode()}}
             for b in message.blocks if b.kind == "tool_use"]
    reply: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    annotations = _message_citations(message)
    if annotations:
        reply["annotations"] = annotations
    if thinking:
        reply["reasoning_content"] = thinking
    if calls:
        reply["tool_calls"] = calls
    reason = FINISH_REASONS.get(message.stop_reason or "end_turn", "stop")
    return {"id": completion_id, "object": "chat.completion", "created": created,
            "model": message.model,
            "choices": [{"index": 0, "message": reply, "logprobs": None,
                         "finish_reason": reason}],
            "usage": usage_json(message.usage)}


def url_citations(hits: list[WebSearchHit], text_after: str, offset: int) -> list[dict[str, Any]]:
    """One ``url_citation`` per distinct result URL. ``text_after`` is the answer written after
    the first results came, starting at character ``offset`` of the content. A URL the answer
    quotes is cited where it stands; the others span all of ``text_after``: we cannot know
    which sentence drew on which page, only that it was written with them at hand."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for hit in hits:
        if hit.url in seen:
            continue
        seen.add(hit.url)
        at = text_after.find(hit.url)
        start, end = ((offset + at, offset + at + len(hit.url)) if at >= 0
                      else (offset, offset + len(text_after)))
        out.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": end, "title": hit.title, "url": hit.url}})
    return out


def _message_citations(message: CollectedMessage) -> list[dict[str, Any]]:
    hits: list[WebSearchHit] = []
    before: list[str] = []
    after: list[str] = []
    for block in message.blocks:
        if block.kind == "web_search_tool_result" and isinstance(block.result, tuple):
            hits += block.result
        elif block.kind == "text":
            (after if hits else before).append(block.text)
    if not hits:
        return []
    return url_citations(hits, "".join(after), len("".join(before)))
