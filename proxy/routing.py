"""Model name -> where it goes: (provider, upstream model), and what to try after it.

In order: an exact model ``id``; an alias (``opus``, ``sonnet``, ``haiku``, or a
``claude-*`` name of one of those families, so that Claude Code's main, small and subagent
models land where the user wants); a prefix rule (``claude`` → the provider named
``anthropic``, bbd2api's table, configurable), which sends the name as asked; then the
default model. Nothing matches and there is no default: a 404 listing the ids that would.

Without a providers file there is one provider, made from the flags and environment, and
every name goes to it (MODEL decides the upstream model, as it always has).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.config import Settings
from proxy.errors import NotFound
from proxy.providers import ModelEntry, Provider, ProvidersFile

FAMILIES = ("opus", "sonnet", "haiku", "fable")
MAX_FALLBACK_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: str  # as the upstream knows it
    max_tokens: int | None = None  # the model's cap, when the file sets one
    label: str = "other"  # for metrics: a configured model id, never a client's free text


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a request goes first, then the fallbacks in order."""

    routes: tuple[Route, ...]

    @property
    def first(self) -> Route:
        return self.routes[0]

    def relayed(self, wire: str) -> Plan:
        """The routes a client speaking ``wire`` can be relayed to, byte for byte."""
        return Plan(tuple(r for r in self.routes if r.provider.wire == wire))

    def translated(self, wire: str) -> Plan:
        """The routes a client speaking ``wire`` can reach only translated."""
        return Plan(tuple(r for r in self.routes if r.provider.wire != wire))


class Router:
    def __init__(self, settings: Settings, providers: ProvidersFile | None) -> None:
        self._settings = settings
        self._file = providers
        self._models: dict[str, tuple[Provider, ModelEntry]] = {}
        self._by_name: dict[str, Provider] = {}
        if providers is not None:
            for provider in providers.providers:
                self._by_name[provider.name] = provider
                for model in provider.models:
                    self._models[model.id] = (provider, model)
        self._single: Provider | None = None
        if providers is None:
            self._single = single_provider(settings)
            self.providers: tuple[Provider, ...] = (self._single,)
        else:
            self.providers = providers.providers
        # The wires some provider speaks: a client of another needs no relay (nor a peek).
        self.wires = frozenset(provider.wire for provider in self.providers)

    def listed_models(self) -> list[tuple[str, str]]:
        """(id, display name) of every model a client may ask for."""
        if self._file is None:
            model = self._settings.model
            return [(model, model)] if model else []
        return [(m.id, m.display_name) for _, m in self._models.values()]

    def plan(self, requested: str) -> Plan:
        if self._single is not None:
            model = self._settings.upstream_model(requested)
            label = model if model == self._settings.model else "other"
            return Plan((Route(self._single, model, label=label),))
        first = self._resolve(requested)
        return Plan((first, *self._fallbacks(first)))

    def _resolve(self, requested: str) -> Route:
        found = self._models.get(requested) or self._alias(requested)
        if found is not None:
            return _route(*found)
        prefixed = self._prefix(requested)
        if prefixed is not None:
            return Route(prefixed, requested)
        default = self._file.default_model if self._file else ""
        if default and default in self._models:
            return _route(*self._models[default])
        ids = ", ".join(sorted(self._models)) or "(none configured)"
        raise NotFound(f"No upstream serves the model {requested!r}. Models: {ids}.")

    def _alias(self, requested: str) -> tuple[Provider, ModelEntry] | None:
        aliases = self._file.aliases if self._file else {}
        target = aliases.get(requested)
        if target is None and requested.startswith("claude"):
            family = next((f for f in FAMILIES if f in requested), None)
            target = aliases.get(family) if family else None
        return self._models.get(target) if target else None

    def _prefix(self, requested: str) -> Provider | None:
        prefixes = self._file.prefixes if self._file else {}
        lowered = requested.lower()
        for prefix in sorted(prefixes, key=len, reverse=True):
            if lowered.startswith(prefix) and prefixes[prefix] in self._by_name:
                return self._by_name[prefixes[prefix]]
        return None

    def _fallbacks(self, first: Route) -> list[Route]:
        """The first route's fallbacks, and theirs after them, each route once."""
        seen = {(first.provider.name, first.model)}
        queue = list(self._models[first.label][1].fallbacks) if first.label in self._models else []
        out: list[Route] = []
        while queue and len(out) < MAX_FALLBACK_DEPTH:
            provider, model = self._models[queue.pop(0)]
            if (provider.name, model.remote_id) in seen:
                continue
            seen.add((provider.name, model.remote_id))
            out.append(_route(provider, model))
            queue.extend(model.fallbacks)
        return out


def _route(provider: Provider, model: ModelEntry) -> Route:
    return Route(provider, model.remote_id, model.max_tokens, label=model.id)


def single_provider(settings: Settings) -> Provider:
    """The one upstream the flags and environment describe (keys may be comma-separated)."""
    keys = tuple(k.strip() for k in settings.upstream_api_key.split(",") if k.strip())
    return Provider(name="default", base_url=settings.upstream_url,
                    kind=settings.upstream_dialect, keys=keys, sdk_base=True,
                    max_connections=settings.max_connections,
                    max_connections_per_host=settings.max_connections_per_host)
