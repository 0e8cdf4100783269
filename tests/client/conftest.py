"""The real proxy in front of either fake upstream, for the client's tests.

``target`` runs every test it serves four times: each client dialect against a proxy
whose upstream speaks OpenAI and one whose upstream speaks Anthropic (two translations,
two same-dialect relays)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes import anthropic_upstream as fake_anthropic
from tests.fakes import openai_upstream as fake_openai
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream, JSONResponse, Scenario

COMBOS = [("anthropic", "openai"), ("openai", "openai"),
          ("anthropic", "anthropic"), ("openai", "anthropic")]


@dataclass
class Target:
    dialect: str  # the client's
    upstream_dialect: str
    url: str  # the proxy's base URL, no /v1
    fake: FakeOpenAIUpstream  # the fake Anthropic upstream is one too
    listed_model: str  # what the proxy's /v1/models lists

    @property
    def relay(self) -> bool:
        return self.dialect == self.upstream_dialect

    def answer_json(self, text: str) -> Scenario:
        """A non-streaming upstream answer in the upstream's dialect."""
        if self.upstream_dialect == "openai":
            return JSONResponse(fake_openai.chat_completion(text))
        return JSONResponse(fake_anthropic.message(text))

    def error(self, status: int, kind: str, message: str) -> Scenario:
        if self.upstream_dialect == "openai":
            return fake_openai.ErrorResponse(status, fake_openai.error_body(message, kind))
        return fake_anthropic.ErrorResponse(status, fake_anthropic.error_body(kind, message))


async def start_target(dialect: str, upstream_dialect: str, upstream: FakeOpenAIUpstream,
                       anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any,
                       **settings: Any) -> Target:
    if upstream_dialect == "openai":
        url = await start_proxy(upstream_url=upstream.base_url,  # type: ignore[attr-defined]
                                model="upstream-model", **settings)
        return Target(dialect, "openai", url, upstream, "upstream-model")
    url = await start_proxy(upstream_url=anthropic_upstream.base_url,  # type: ignore[attr-defined]
                            upstream_dialect="anthropic", upstream_api_key="sk-ant-test-key",
                            model="claude-default", **settings)
    return Target(dialect, "anthropic", url, anthropic_upstream, "claude-default")


@pytest.fixture(params=COMBOS, ids=[f"{c}-via-{u}" for c, u in COMBOS])
async def target(request: pytest.FixtureRequest, upstream: FakeOpenAIUpstream,
                 anthropic_upstream: FakeAnthropicUpstream, start_proxy: Any) -> Target:
    dialect, upstream_dialect = request.param
    return await start_target(dialect, upstream_dialect, upstream, anthropic_upstream,
                              start_proxy)
