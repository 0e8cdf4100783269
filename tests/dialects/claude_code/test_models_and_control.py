"""Model names -> the CLI's, the model list, and reading the CLI's control answers
(recorded from the real CLI: initialize with each kind of credentials, the ready probe)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.models import (
    DEFAULT_LIST,
    cli_model,
    listed_models,
    resolved_ids,
)
from tests.support import fixture


def answer(name: str, request_id: str) -> Any:
    for line in fixture(f"claude_code_cli/{name}.jsonl").splitlines():
        found = control.answer_to(json.loads(line), request_id)
        if found is not None:
            return found
    raise AssertionError(f"no answer to {request_id} in {name}")


@pytest.mark.parametrize(("name", "expected"), [
    ("opus", "opus"), ("sonnet", "sonnet"), ("haiku", "haiku"), ("fable", "fable"),
    ("Sonnet", "sonnet"), (" haiku ", "haiku"),
    ("claude-sonnet", "sonnet"), ("claude-opus-latest", "opus"),
    ("claude-3.5-sonnet", "sonnet"), ("claude-3-5-sonnet-20241022", "sonnet"),
    ("claude-3-opus-20240229", "opus"), ("claude-3-5-haiku-latest", "haiku"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
    ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("claude-opus-5-5", "opus"),  # what the alias resolves to: no validation call
    ("claude-fable-5-2", "fable"),
    ("gpt-4o", None), ("claude", None), ("claude-2.1", None), ("my-sonnet", None), ("", None),
])
def test_client_names_to_the_clis(name: str, expected: str | None) -> None:
    assert cli_model(name) == expected


def test_resolution_follows_the_running_clis_own_table() -> None:
    models = answer("initialize_api_key", control.INIT_ID)["response"]["models"]
    table = resolved_ids(models)
    assert table == {"claude-opus-5-5": "opus", "claude-fable-5-2": "fable",
                     "claude-sonnet-5-5": "sonnet", "claude-haiku-5-5": "haiku"}
    assert cli_model("claude-sonnet-5-5", table) == "sonnet"
    assert cli_model("claude-sonnet-5-5", {}) == "claude-sonnet-5-5"


def test_the_model_list_from_the_cli_and_without_it() -> None:
    assert listed_models() == list(DEFAULT_LIST)
    assert [m for m, _ in DEFAULT_LIST] == ["opus", "sonnet", "haiku"]
    models = answer("initialize_api_key", control.INIT_ID)["response"]["models"]
    listed = dict(listed_models(models))
    assert list(listed) == ["opus", "fable", "sonnet", "haiku", "claude-opus-5-5",
                            "claude-fable-5-2", "claude-sonnet-5-5", "claude-haiku-5-5"]
    assert "Sonnet" in listed["sonnet"] and "default" not in listed
    assert listed_models([{"value": "default"}]) == list(DEFAULT_LIST)


@pytest.mark.parametrize(("name", "expected"), [
    ("initialize_api_key", True), ("initialize_oauth_env", True),
    ("initialize_login_file", True), ("initialize_none", False)])
def test_login_as_the_initialize_answer_shows_it(name: str, expected: bool) -> None:
    account = answer(name, control.INIT_ID)["response"]["account"]
    assert control.logged_in(account) is expected


def test_another_provider_is_not_judged() -> None:
    assert control.logged_in({"tokenSource": "none", "apiProvider": "bedrock"}) is None


def test_the_ready_probe_is_answered_and_nothing_else_is_said() -> None:
    lines = [json.loads(line) for line in fixture("claude_code_cli/ready_probe.jsonl")
             .splitlines()]
    assert len(lines) == 1
    assert answer("ready_probe", control.PROBE_ID) == {
        "subtype": "success", "request_id": control.PROBE_ID,
        "response": {"mcpServers": []}}
    assert control.answer_to(lines[0], control.INIT_ID) is None
    assert control.answer_to({"type": "result"}, control.PROBE_ID) is None
