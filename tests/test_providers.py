"""The providers file: the Go claude-proxy's config.json as is, our additions, and faults
that name the file and the place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.config import load_settings
from proxy.providers import ConfigError, json_fault, parse_providers, read_providers_file

GO_EXAMPLE = Path(__file__).parent / "fixtures/config/go_claude_proxy.json"


def test_the_go_proxy_example_loads_unchanged(tmp_path: Path) -> None:
    settings = load_settings(["--config", str(GO_EXAMPLE), "--env-file", str(tmp_path / "x")], {})
    file = settings.providers_file
    assert file is not None
    provider = file.providers[0]
    assert provider.keys == ("your-upstream-api-key",) and provider.kind == "openai" and provider.wire == "openai"
    assert provider.chat_completions_url == "https://api.example.com/v1/chat/completions"
    assert [(m.id, m.display_name, m.remote_id) for m in provider.models] == [
        ("glm", "glm4.7", "deepseek-chat"), ("minimax", "minimax2.1", "mimo-v2-flash")]
    assert (settings.proxy_api_key, settings.port, settings.read_timeout) == (
        "your-proxy-api-key", 8888, 300.0)
    assert settings.log_body_max_chars == 4096 and settings.upstream_configured


def test_flags_and_environment_beat_the_file(tmp_path: Path) -> None:
    settings = load_settings(["--config", str(GO_EXAMPLE), "--port", "9999",
                              "--env-file", str(tmp_path / "x")], {"PROXY_API_KEY": "env-key"})
    assert (settings.port, settings.proxy_api_key) == (9999, "env-key")


def test_our_additions() -> None:
    file = parse_providers({
        "providers": [
            {"name": "deepseek", "base_url": "https://api.deepseek.com", "api_key": "k1, k2,k1",
             "models": [{"id": "ds", "remote_id": "deepseek-chat", "fallbacks": ["glm"],
                         "max_tokens": 8192}]},
            {"name": "glm", "base_url": "https://open.bigmodel.cn/api/paas/v4",
             "api_keys": ["g1"], "headers": {"X-Org": "me"}, "max_connections": 10,
             "read_timeout_seconds": 30, "models": [{"id": "glm"}]},
            {"name": "anthropic", "dialect": "anthropic", "base_url": "https://api.anthropic.com",
             "api_key": "sk-ant-x", "models": []},
        ],
        "aliases": {"opus": "ds"}, "default_model": "glm"})
    deepseek, glm, anthropic = file.providers
    assert deepseek.keys == ("k1", "k2")  # comma-separated, de-duplicated
    assert deepseek.models[0].fallbacks == ("glm",) and deepseek.models[0].max_tokens == 8192
    assert glm.chat_completions_url == "https://open.bigmodel.cn/api/paas/v4/chat/completions"
    assert glm.headers == (("X-Org", "me"),) and glm.max_connections == 10
    assert glm.read_timeout == 30
    assert anthropic.messages_url == "https://api.anthropic.com/v1/messages"
    assert file.aliases == {"opus": "ds"} and file.default_model == "glm"
    assert file.prefixes["claude"] == "anthropic"


@pytest.mark.parametrize(("raw", "message"), [
    ([], "top level: the file must hold a JSON object"),
    ({}, "providers: is required"),
    ({"providers": []}, "providers: at least one provider is required"),
    ({"providers": [{"api_key": "k"}]}, "providers[0].base_url: is required"),
    ({"providers": [{"base_url": 5}]}, "providers[0].base_url: must be a string"),
    ({"providers": [{"base_url": "http://u", "dialect": "grpc"}]}, "providers[0].dialect"),
    ({"providers": [{"base_url": "http://u", "kind": "grpc"}]},
     "providers[0].kind: must be one of openai, anthropic"),
    ({"providers": [{"base_url": "http://u", "models": [{"display_name": "x"}]}]},
     "providers[0].models[0].id: is required"),
    ({"providers": [{"base_url": "http://u", "models": [{"id": "a"}, {"id": "a"}]}]},
     "providers[0].models[1].id: 'a' is used twice"),
    ({"providers": [{"base_url": "http://u", "models": [{"id": "a", "fallbacks": ["b"]}]}]},
     "providers[0].models[0].fallbacks: 'b' is not a model id"),
    ({"providers": [{"base_url": "http://u"}], "port": "80"}, "port: must be an integer"),
    ({"providers": [{"base_url": "http://u"}], "aliases": {"opus": 1}}, "aliases: must map"),
    ({"providers": [{"base_url": "http://u"}], "aliases": {"opus": "x"}},
     "aliases.opus: 'x' is not a model id"),
    ({"providers": [{"base_url": "http://u"}], "default_model": "x"}, "default_model: 'x'"),
    ({"providers": [{"base_url": "http://u"}], "prefixes": {"gpt": "nobody"}},
     "prefixes.gpt: 'nobody' is not a provider name"),
    ({"providers": [{"base_url": "api.example.com/v1"}]}, "providers[0].base_url: must be an"),
    ({"providers": [{"base_url": "http://u", "models": [{"id": "a", "max_tokens": 0}]}]},
     "providers[0].models[0].max_tokens: must be at least 1"),
    ({"providers": [{"base_url": "http://u", "api_keys": "sk-live-secret-0001"}]},
     "api_keys: must be a list, not str"),  # a key's value is never quoted
])
def test_faults_name_the_place(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="config.json: ") as caught:
        parse_providers(raw)
    assert message in str(caught.value)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "providers": [\n    {"base_url": "http://u",}\n  ]\n}\n')
    with pytest.raises(ConfigError, match=r"bad.json:3:28: not valid JSON: a trailing comma "
                       r"before '}' \(JSON allows none\)\.$"):
        read_providers_file(str(path))
    path.write_text('{"providers": [\n  {"base_url": "http://u"} {}]}')
    with pytest.raises(ConfigError, match=r"bad.json:2:28: not valid JSON: "):
        read_providers_file(str(path))


@pytest.mark.parametrize(("text", "pos", "why"), [
    # where and how each Python reports the same trailing comma
    ('{"a": 1,\n}', 9, "Expecting property name enclosed in double quotes"),  # 3.11, 3.12
    ('{"a": 1,\n}', 7, "Illegal trailing comma before end of object"),  # 3.13
    ("[1, 2 ,  ]", 9, "Expecting value"),  # 3.11, 3.12
    ("[1, 2 ,  ]", 6, "Illegal trailing comma before end of array"),  # 3.13
])
def test_a_trailing_comma_reads_the_same_on_every_python(text: str, pos: int, why: str) -> None:
    closer = text.rstrip()[-1]
    column = 8 if closer == "}" else 7
    assert json_fault(json.JSONDecodeError(why, text, pos)) == (
        f"1:{column}: not valid JSON: a trailing comma before {closer!r} (JSON allows none).")


def test_a_broken_file_stops_start_up_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": [{"base_url": 5}]}))
    with pytest.raises(SystemExit, match=r"config.json: providers\[0\].base_url: must be"):
        load_settings(["--config", str(path), "--env-file", str(tmp_path / "x")], {})


def test_an_empty_value_does_not_override_the_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PROXY_API_KEY=\nPORT=\n")  # a copied .env.example
    settings = load_settings(["--config", str(GO_EXAMPLE), "--env-file", str(dotenv)],
                             {"PORT": ""})
    assert (settings.proxy_api_key, settings.port) == ("your-proxy-api-key", 8888)


def test_kind_is_the_new_name_and_dialect_the_old_one() -> None:
    file = parse_providers({"providers": [
        {"name": "a", "kind": "anthropic", "base_url": "http://a"},
        {"name": "b", "dialect": "anthropic", "base_url": "http://b"},
        {"name": "c", "base_url": "http://c"}]})
    assert [(p.kind, p.wire) for p in file.providers] == [
        ("anthropic", "anthropic"), ("anthropic", "anthropic"), ("openai", "openai")]
