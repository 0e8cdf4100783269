"""Model name -> route: exact id, alias, prefix, default, 404; fallbacks in order."""

from __future__ import annotations

import pytest

from proxy.config import Settings
from proxy.errors import NotFound
from proxy.providers import parse_providers
from proxy.routing import Router

FILE = parse_providers({
    "providers": [
        {"name": "deepseek", "base_url": "http://ds", "models": [
            {"id": "ds", "remote_id": "deepseek-chat", "fallbacks": ["glm", "local"]},
            {"id": "ds-r1", "remote_id": "deepseek-reasoner"}]},
        {"name": "glm", "base_url": "http://glm", "models": [
            {"id": "glm", "display_name": "GLM 4.7", "remote_id": "glm-4.7"}]},
        {"name": "openai", "base_url": "http://oai", "models": [
            {"id": "local", "remote_id": "qwen3"}]},
        {"name": "anthropic", "dialect": "anthropic", "base_url": "http://ant", "models": []},
    ],
    "aliases": {"opus": "ds-r1", "sonnet": "ds", "haiku": "glm", "fast": "glm"},
    "default_model": "local",
})


def where(router: Router, model: str) -> tuple[str, str]:
    route = router.plan(model).first
    return route.provider.name, route.model


@pytest.mark.parametrize(("asked", "expected"), [
    ("ds", ("deepseek", "deepseek-chat")),             # exact id
    ("glm", ("glm", "glm-4.7")),
    ("opus", ("deepseek", "deepseek-reasoner")),       # alias
    ("fast", ("glm", "glm-4.7")),
    ("claude-opus-5-5", ("deepseek", "deepseek-reasoner")),  # Claude Code's families
    ("claude-sonnet-4-5-20250929", ("deepseek", "deepseek-chat")),
    ("claude-haiku-4-5-20251001", ("glm", "glm-4.7")),
    ("claude-fable-5-2", ("anthropic", "claude-fable-5-2")),  # no alias: the prefix rule
    ("gpt-4o", ("openai", "gpt-4o")),                  # prefix, the name as asked
    ("o3-mini", ("openai", "o3-mini")),
    ("some-model", ("openai", "qwen3")),               # the default model
])
def test_routes(asked: str, expected: tuple[str, str]) -> None:
    assert where(Router(Settings(), FILE), asked) == expected


def test_fallbacks_chain_once_each_and_the_default_model_brings_its_own() -> None:
    file = parse_providers({"providers": [
        {"name": "p", "base_url": "http://p", "models": [
            {"id": "a", "remote_id": "r", "fallbacks": ["b", "a2"]},
            {"id": "a2", "remote_id": "r"}, {"id": "b", "fallbacks": ["c"]}, {"id": "c"}]}],
        "default_model": "a"})
    router = Router(Settings(), file)
    expected = [("p", "r"), ("p", "b"), ("p", "c")]  # a2 is a again; c comes through b
    assert [(r.provider.name, r.model) for r in router.plan("a").routes] == expected
    assert [(r.provider.name, r.model) for r in router.plan("unknown").routes] == expected


def test_fallbacks_follow_in_order() -> None:
    plan = Router(Settings(), FILE).plan("sonnet")
    assert [(r.provider.name, r.model) for r in plan.routes] == [
        ("deepseek", "deepseek-chat"), ("glm", "glm-4.7"), ("openai", "qwen3")]


def test_no_match_and_no_default_is_a_404_listing_the_ids() -> None:
    file = parse_providers({"providers": [{"base_url": "http://u", "models": [{"id": "a"}, {"id": "b"}]}],
                            "prefixes": {}})
    with pytest.raises(NotFound, match="'gpt-4o'.*Models: a, b"):
        Router(Settings(), file).plan("gpt-4o")


def test_prefixes_are_configurable_and_point_at_provider_names() -> None:
    file = parse_providers({"providers": [{"name": "mine", "base_url": "http://u"}],
                            "prefixes": {"gpt": "mine"}})
    router = Router(Settings(), file)
    assert where(router, "gpt-x") == ("mine", "gpt-x")
    with pytest.raises(NotFound):
        router.plan("llama-3")  # the built-in table is replaced, not extended


def test_listed_models_have_display_names() -> None:
    assert ("glm", "GLM 4.7") in Router(Settings(), FILE).listed_models()


def test_without_a_file_one_upstream_takes_every_name() -> None:
    router = Router(Settings(upstream_url="http://u/v1", model="m", upstream_api_key="a,b"),
                    None)
    route = router.plan("claude-opus-5-5").first
    assert (route.model, route.provider.keys) == ("m", ("a", "b"))
    assert route.provider.chat_completions_url == "http://u/v1/chat/completions"
