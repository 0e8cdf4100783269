"""The headers module, table by table: hop-by-hop both ways (RFC 9110 7.6.1), the
client's credentials never forwarded, credentials per kind, Anthropic's header rules."""

from __future__ import annotations

import pytest

from proxy.backends.headers import (
    anthropic_headers,
    credentials,
    end_to_end,
    from_client,
    from_upstream,
)
from proxy.config import Settings


@pytest.mark.parametrize(("given", "kept"), [
    ([("Content-Type", "application/json")], {"content-type": "application/json"}),
    ([("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")], {}),
    ([("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c")], {}),
    ([("Proxy-Connection", "x"), ("Trailer", "x"), ("Proxy-Authorization", "x")], {}),
    ([("Host", "x"), ("Content-Length", "3")], {}),
    # Whatever Connection names is hop-by-hop too, whatever its case and spacing.
    ([("Connection", "X-Secret-Hop, close"), ("x-secret-hop", "1"), ("X-Kept", "2")],
     {"x-kept": "2"}),
    ([("Connection", "anthropic-beta"), ("anthropic-beta", "b1")], {}),
])
def test_end_to_end(given: list[tuple[str, str]], kept: dict[str, str]) -> None:
    assert end_to_end(given) == kept


@pytest.mark.parametrize("name", ["Authorization", "X-Api-Key", "Accept-Encoding",
                                  "Content-Encoding"])
def test_a_clients_credentials_and_encodings_never_go_up(name: str) -> None:
    assert from_client([(name, "v"), ("anthropic-version", "2023-06-01")]) == {
        "anthropic-version": "2023-06-01"}


def test_an_upstream_answers_headers_keep_repeats_and_lose_hop_by_hop() -> None:
    given = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Connection", "close, X-H"),
             ("X-H", "1"), ("Content-Encoding", "gzip"), ("request-id", "r1")]
    assert from_upstream(given) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                    ("request-id", "r1")]


@pytest.mark.parametrize(("kind", "key", "expected"), [
    ("openai", "sk-1", {"authorization": "Bearer sk-1"}),
    ("anthropic", "sk-ant-api03-x", {"x-api-key": "sk-ant-api03-x"}),
    ("anthropic", "sk-ant-oat01-x", {"authorization": "Bearer sk-ant-oat01-x"}),
    ("backboard", "bb-key", {"x-api-key": "bb-key"}),
    ("openai", None, {}),
    ("anthropic", "", {}),
])
def test_credentials_per_kind(kind: str, key: str | None, expected: dict[str, str]) -> None:
    assert credentials(kind, key) == expected


def test_the_clients_anthropic_version_and_betas_win_and_configured_ones_join() -> None:
    settings = Settings(anthropic_beta="configured-1")
    headers = anthropic_headers(settings, "sk-ant-api03-k", {
        "anthropic-version": "2099-01-01", "anthropic-beta": "client-1,client-2"})
    assert headers["anthropic-version"] == "2099-01-01"
    assert headers["anthropic-beta"] == "client-1,client-2,configured-1"
    assert headers["x-api-key"] == "sk-ant-api03-k"
    assert "anthropic-beta" not in anthropic_headers(Settings(), None)
    assert anthropic_headers(Settings(), None)["anthropic-version"] == "2023-06-01"


def test_the_claude_code_profile_is_off_unless_asked_for() -> None:
    assert "x-app" not in anthropic_headers(Settings(), "k")
    profiled = anthropic_headers(Settings(claude_code_headers=True,
                                          claude_code_profile='{"x-app": "mine"}'), "k")
    assert profiled["x-app"] == "mine" and "claude-code-20250219" in profiled["anthropic-beta"]
