"""backboard's HTTP errors in words, model names both ways, and the bodies its endpoints take."""

from __future__ import annotations

import json

import pytest

from proxy.dialects.backboard import api
from proxy.dialects.backboard.errors import detail_message, http_error
from proxy.dialects.backboard.models import client_model_id, model_list, provider_for
from proxy.errors import UpstreamProtocolError
from tests.fakes.backboard_answers import CATALOGUE

# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("raw", "words"), [
    (b'{"detail": "Thread not found"}', "Thread not found"),
    (json.dumps({"detail": [
        {"loc": ["body", "content"], "msg": "Field required", "type": "missing"},
        {"loc": ["path", "thread_id"], "msg": "Input should be a valid UUID",
         "type": "uuid_parsing", "input": "x"}]}).encode(),
     "body.content: Field required; path.thread_id: Input should be a valid UUID"),
    (b'{"detail": {"message": "nested"}}', "nested"),
    (b'{"error": "plain error"}', "plain error"),
    (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
    (b"", ""),
    (b'{"detail": "' + b"x" * 3000 + b'"}', "x" * 1000 + "…"),
])
def test_error_bodies_in_words(raw: bytes, words: str) -> None:
    assert detail_message(raw) == words


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_authentication_with_its_own_status(status: int) -> None:
    error = http_error(status, b'{"detail": "Invalid API key"}')
    assert (error.status, error.kind) == (status, "authentication")
    assert error.message == f"backboard refused the API key ({status}): Invalid API key"


def test_429_keeps_retry_after_and_the_raw_body() -> None:
    raw = b'{"detail": "Rate limit exceeded"}'
    error = http_error(429, raw, retry_after="7")
    assert (error.status, error.kind, error.retry_after, error.raw) == (429, "rate_limit", "7",
                                                                       raw)
    assert error.message == "backboard answered HTTP 429: Rate limit exceeded"


@pytest.mark.parametrize(("status", "raw", "mapped", "kind"), [
    (422, b'{"detail": [{"loc": ["body", "content"], "msg": "Field required"}]}', 422,
     "invalid_request"),
    (404, b'{"detail": "Thread not found"}', 404, "not_found"),
    (404, b'{"detail": "model_not_found: model gpt-9 does not exist"}', 404, "not_found"),
    (400, b'{"detail": "context_length_exceeded"}', 400, "invalid_request"),
    (500, b'{"detail": "upstream context length exceeded"}', 400, "invalid_request"),
    (500, b'{"detail": "boom"}', 500, "api_error"),
    (502, b"<html>bad gateway</html>", 502, "api_error"),
    (503, b'{"detail": "Service unavailable"}', 529, "overloaded"),
])
def test_statuses_map_as_for_every_upstream_with_causes_first(status: int, raw: bytes,
                                                              mapped: int, kind: str) -> None:
    error = http_error(status, raw)
    assert (error.status, error.kind) == (mapped, kind)
    assert detail_message(raw) in error.message


def test_a_full_context_reads_prompt_is_too_long() -> None:
    error = http_error(400, b'{"detail": "context_length_exceeded: 300000 tokens"}')
    assert error.message.startswith("prompt is too long (backboard answered HTTP 400: ")


# ---------------------------------------------------------------------------- models


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-sonnet-4-6", ("anthropic", "claude-sonnet-4-6")),
    ("Claude-Opus-4-1", ("anthropic", "Claude-Opus-4-1")),
    ("gpt-4o", ("openai", "gpt-4o")), ("o1-mini", ("openai", "o1-mini")),
    ("o3", ("openai", "o3")), ("o4-mini", ("openai", "o4-mini")),
    ("chatgpt-4o-latest", ("openai", "chatgpt-4o-latest")),
    ("gemini-2.5-pro", ("google", "gemini-2.5-pro")),
    ("mistral-large-latest", ("mistral", "mistral-large-latest")),
    ("mixtral-8x7b", ("mistral", "mixtral-8x7b")), ("llama-3.3-70b", ("meta", "llama-3.3-70b")),
    ("grok-4", ("openai", "grok-4")),  # anything else: openai, as bbd2api
    ("xai/grok-4", ("xai", "grok-4")),
    ("openrouter/meta-llama/llama-3.3-70b-instruct",
     ("openrouter", "meta-llama/llama-3.3-70b-instruct")),
    ("anthropic/claude-sonnet-4-6", ("anthropic", "claude-sonnet-4-6")),
    ("/odd", ("openai", "/odd")), ("odd/", ("openai", "odd/")),
])
def test_model_names_find_their_provider(model: str, expected: tuple[str, str]) -> None:
    assert provider_for(model) == expected


def test_the_model_list_names_each_model_so_it_routes_back() -> None:
    pairs = model_list({"models": CATALOGUE, "total": len(CATALOGUE)})
    ids = [model_id for model_id, _ in pairs]
    assert "claude-sonnet-4-6" in ids and "gpt-4o" in ids
    assert "openrouter/meta-llama/llama-3.3-70b-instruct" in ids
    assert "text-embedding-3-small" not in ids  # language models only
    assert ("gemini-2.0-flash", "gemini-2.0-flash (google)") in pairs
    by_id = {client_model_id(m["provider"], m["name"]): m for m in CATALOGUE}
    for model_id in ids:
        model = by_id[model_id]
        assert provider_for(model_id) == (model["provider"], model["name"])


def test_the_model_list_skips_what_it_cannot_read() -> None:
    body = {"models": [{"name": "a"}, {"provider": "openai"}, "x", None,
                       {"name": "gpt-4o", "provider": "openai"},
                       {"name": "gpt-4o", "provider": "openai"},
                       {"name": "gpt-4o", "provider": "azure"}]}
    assert model_list(body) == [("gpt-4o", "gpt-4o (openai)"),
                                ("azure/gpt-4o", "gpt-4o (azure)")]
    assert model_list({"detail": "x"}) == [] and model_list(None) == []


# ------------------------------------------------------------------------------- api


def test_message_fields_are_what_bbd2api_sends() -> None:
    assert api.message_fields("hi", "claude-sonnet-4-6", stream=True) == {
        "content": "hi", "llm_provider": "anthropic", "model_name": "claude-sonnet-4-6",
        "stream": True, "memory": "off"}


def test_the_assistant_is_found_by_name_the_oldest_first() -> None:
    listed = [{"assistant_id": "b", "name": api.ASSISTANT_NAME, "created_at": "2026-02-01"},
              {"assistant_id": "c", "name": "other", "created_at": "2026-01-01"},
              {"assistant_id": "a", "name": api.ASSISTANT_NAME, "created_at": "2026-01-15"}]
    assert api.find_assistant(listed) == "a"
    assert api.find_assistant({"assistants": listed}) == "a"
    assert api.find_assistant([]) is None and api.find_assistant({"detail": "x"}) is None
    assert api.assistant_body()["name"] == api.ASSISTANT_NAME
    assert api.assistants_query(skip=100) == {"name": api.ASSISTANT_NAME, "skip": "100",
                                             "limit": "100"}


def test_ids_in_answers() -> None:
    assert api.assistant_id({"assistant_id": "a-1"}) == "a-1"
    assert api.thread_id({"thread_id": "t-1", "messages": []}) == "t-1"
    for bad in ({}, {"thread_id": ""}, {"thread_id": 5}, ["t"]):
        with pytest.raises(UpstreamProtocolError, match="thread_id"):
            api.thread_id(bad)
