"""Model names both ways: a client's model name -> backboard's ``(llm_provider, model_name)``,
and backboard's model list -> the (id, display name) pairs a client's list shows.

Sans-I/O. backboard wants a provider beside each model name (backboard.md 1.5). A name
``provider/model`` says both (the official cookbook proxy's rule, split on the first
``/``, so ``openrouter/meta-llama/llama-3`` keeps its own slash); a bare name finds its
provider in bbd2api's prefix table (backboard.md 2.9), ``openai`` when nothing matches.
The list offers each model under the name that routes back to it: bare when the prefix
table already finds its provider, ``provider/name`` otherwise.
"""

from __future__ import annotations

from typing import Any

PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("claude",), "anthropic"),
    (("gpt-", "o1", "o3", "o4", "chatgpt"), "openai"),
    (("gemini",), "google"),
    (("mistral", "mixtral"), "mistral"),
    (("llama",), "meta"),
)
DEFAULT_PROVIDER = "openai"


def provider_for(model: str) -> tuple[str, str]:
    """``(llm_provider, model_name)`` for a client's model name."""
    provider, slash, name = model.partition("/")
    if slash and provider and name:
        return provider, name
    lowered = model.lower()
    for prefixes, known in PREFIXES:
        if lowered.startswith(prefixes):
            return known, model
    return DEFAULT_PROVIDER, model


def client_model_id(provider: str, name: str) -> str:
    """The name a client should use for backboard's ``name`` at ``provider``."""
    return name if provider_for(name) == (provider, name) else f"{provider}/{name}"


def model_list(body: Any) -> list[tuple[str, str]]:
    """``GET /models``' answer (``{"models": [...], "total": n}``) as (id, display name)
    pairs, language models only, in backboard's order, each id once."""
    models = body.get("models") if isinstance(body, dict) else body
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for model in models if isinstance(models, list) else ():
        if not isinstance(model, dict) or model.get("model_type", "llm") != "llm":
            continue
        name, provider = model.get("name"), model.get("provider")
        if not (isinstance(name, str) and name and isinstance(provider, str) and provider):
            continue
        model_id = client_model_id(provider, name)
        if model_id not in seen:
            seen.add(model_id)
            pairs.append((model_id, f"{name} ({provider})"))
    return pairs
