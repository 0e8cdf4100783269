"""What a client asks of the web tools, read from Anthropic's and OpenAI's request shapes."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import InvalidRequest
from proxy.web_tools.spec import (
    FetchSpec,
    SearchSpec,
    SourceFilter,
    UrlSources,
    UserLocation,
    WebToolsSpec,
    model_functions,
    parse_anthropic_tools,
    parse_web_search_options,
    web_tool_kind,
)

BASH = {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}


def test_claude_codes_web_search_tool() -> None:
    """The tool Claude Code's WebSearch puts in its request (allowed domains as the user gave
    them to the WebSearch tool)."""
    spec = parse_anthropic_tools([BASH, {
        "type": "web_search_20250305", "name": "web_search", "max_uses": 8,
        "allowed_domains": ["Docs.Python.org", "https://peps.python.org/"]}])
    assert spec == WebToolsSpec(search=SearchSpec(
        max_uses=8, allowed_domains=("docs.python.org", "peps.python.org")))
    assert spec and spec.fetch is None


def test_every_field_and_later_versions() -> None:
    spec = parse_anthropic_tools([
        {"type": "web_search_20260318", "name": "web_search", "blocked_domains": ["x.com"],
         "user_location": {"type": "approximate", "city": "Lyon", "region": "ARA",
                           "country": "fr", "timezone": "Europe/Paris"},
         "cache_control": {"type": "ephemeral"}, "allowed_callers": ["direct"],
         "some_future_field": True},
        {"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 2,
         "allowed_domains": ["example.org/docs"], "max_content_tokens": 5000,
         "citations": {"enabled": True}, "use_cache": False,
         "url_sources": {"user_input": {"type": "none"},
                         "client_tool_results": {"type": "only", "tools": [
                             {"type": "tool_reference", "name": "Read"}]},
                         "server_tool_results": {"type": "except", "tools": [
                             {"type": "tool_reference", "name": "web_fetch"}]}}}])
    assert spec.search == SearchSpec(blocked_domains=("x.com",), user_location=UserLocation(
        "Lyon", "ARA", "FR", "Europe/Paris"))
    assert spec.fetch == FetchSpec(
        max_uses=2, allowed_domains=("example.org/docs",), max_content_tokens=5000,
        url_sources=UrlSources(user_input=False,
                               client_tool_results=SourceFilter("only", frozenset({"Read"})),
                               server_tool_results=SourceFilter("except",
                                                                frozenset({"web_fetch"}))))
    assert spec.fetch.url_sources.client_tool_results.admits("Read")
    assert not spec.fetch.url_sources.client_tool_results.admits("Bash")
    assert spec.fetch.url_sources.server_tool_results.admits("web_search")


def test_no_web_tools() -> None:
    spec = parse_anthropic_tools([BASH, {"type": "bash_20250124", "name": "bash"}])
    assert not spec and spec == WebToolsSpec()
    assert web_tool_kind(BASH) is None and web_tool_kind("web_search") is None


@pytest.mark.parametrize(("tool", "param"), [
    ({"allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}, "tools.0.allowed_domains"),
    ({"max_uses": 0}, "tools.0.max_uses"),
    ({"max_uses": "3"}, "tools.0.max_uses"),
    ({"max_uses": True}, "tools.0.max_uses"),
    ({"allowed_domains": "a.com"}, "tools.0.allowed_domains"),
    ({"blocked_domains": ["a b.com"]}, "tools.0.blocked_domains"),
    ({"user_location": "Paris"}, "tools.0.user_location"),
    ({"user_location": {"type": "approximate", "city": 7}}, "tools.0.user_location.city"),
])
def test_what_anthropic_refuses_is_refused(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_anthropic_tools([{"type": "web_search_20250305", "name": "web_search", **tool}])
    assert caught.value.param == param and caught.value.status == 400


@pytest.mark.parametrize(("tool", "param"), [
    ({"max_content_tokens": 0}, "tools.0.max_content_tokens"),
    ({"url_sources": {"user_input": {"type": "only", "tools": []}}},
     "tools.0.url_sources.user_input.type"),
    ({"url_sources": {"client_tool_results": {"type": "only"}}},
     "tools.0.url_sources.client_tool_results.tools"),
])
def test_bad_fetch_fields_are_refused(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_anthropic_tools([{"type": "web_fetch_20250910", "name": "web_fetch", **tool}])
    assert caught.value.param == param


def test_a_client_tool_named_like_a_server_tool_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="web_search"):
        parse_anthropic_tools([{"name": "web_search", "input_schema": {"type": "object"}},
                               {"type": "web_search_20250305", "name": "web_search"}])


@pytest.mark.parametrize(("options", "spec"), [
    ({}, SearchSpec()),
    ({"search_context_size": "low"}, SearchSpec(max_results=3)),
    ({"search_context_size": "high", "user_location": {"type": "approximate", "approximate": {
        "country": "us", "city": "Austin"}}},
     SearchSpec(max_results=10, user_location=UserLocation(city="Austin", country="US"))),
])
def test_openai_web_search_options(options: dict[str, Any], spec: SearchSpec) -> None:
    assert parse_web_search_options(options) == spec


@pytest.mark.parametrize("options", [[], {"search_context_size": "huge"}])
def test_bad_openai_web_search_options(options: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse_web_search_options(options)


def test_the_model_is_offered_two_plain_functions_with_the_limits_in_words() -> None:
    spec = WebToolsSpec(SearchSpec(max_uses=3, allowed_domains=("python.org",)),
                        FetchSpec(blocked_domains=("evil.example",)))
    search, fetch = model_functions(spec)
    assert (search.name, fetch.name) == ("web_search", "web_fetch")
    assert search.input_schema["required"] == ["query"]
    assert fetch.input_schema["required"] == ["url"]
    assert search.description and "python.org" in search.description
    assert "At most 3" in search.description
    assert fetch.description and "evil.example" in fetch.description
    assert "appeared in the conversation" in fetch.description
    (plain,) = model_functions(WebToolsSpec(search=SearchSpec()))
    assert plain.name == "web_search" and plain.input_schema == search.input_schema
    assert plain.description and "At most" not in plain.description
    assert model_functions(WebToolsSpec()) == ()
