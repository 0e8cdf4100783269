"""The providers file: upstreams, their keys and models, and the routing tables.

The Go claude-proxy's ``config.json`` loads unchanged (``ak``, ``port``,
``upstream_timeout_seconds``, ``log_body_max_chars``, ``log_stream_text_preview_chars``,
``providers[]`` of ``base_url``, ``api_key``, ``models[]`` of ``id``, ``display_name``,
``remote_id``). Everything else is an optional addition with a default:

    providers[].name            "provider1"…          what prefix rules point at
    providers[].kind            "openai"              the backend kind (proxy.kinds): "openai",
                                                      "anthropic", …; "dialect" is its old name
    providers[].api_key         "k1,k2"               several keys, comma-separated…
    providers[].api_keys        ["k1", "k2"]          …or as a list
    providers[].headers         {}                    extra headers sent upstream
    providers[].connect_timeout_seconds / read_timeout_seconds
    providers[].max_connections / max_connections_per_host
    providers[].models[].fallbacks  []                model ids to try next, in order
    providers[].models[].max_tokens                   a cap on max_tokens for that model
    keys                        []                    inbound keys besides ``ak``: {"name",
                                                      "key", "models"?, "rpm"?, "tpm"?}
    aliases                     {}                    "opus" → a model id (Claude Code's families)
    prefixes                    bbd2api's table       model-name prefix → provider name
    default_model               ""                    used when nothing else matches
    tavily_key / tavily_url     ""                    web search and fetch through Tavily
                                                      (TAVILY_API_KEY / TAVILY_BASE_URL win)

A broken file stops start-up with a message naming the file, the place and the fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.kinds import KINDS, Kind, Wire, kind_named

DEFAULT_PREFIXES = {"claude": "anthropic", "gpt": "openai", "o1": "openai", "o3": "openai",
                    "o4": "openai", "chatgpt": "openai", "gemini": "google",
                    "mistral": "mistral", "mixtral": "mistral", "llama": "meta"}


# Never quoted in a fault.
SECRET_FIELDS = frozenset({"ak", "api_key", "api_keys", "headers", "tavily_key", "key", "keys"})


class ConfigError(Exception):
    """The providers file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    display_name: str
    remote_id: str
    fallbacks: tuple[str, ...] = ()
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    base_url: str
    kind: str = "openai"  # a name in proxy.kinds.KINDS
    keys: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    models: tuple[ModelEntry, ...] = ()
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_connections: int = 1000
    max_connections_per_host: int = 1000
    sdk_base: bool = False  # base_url is exactly as the openai SDK takes it (UPSTREAM_URL)

    @property
    def backend_kind(self) -> Kind:
        return KINDS[self.kind]

    @property
    def wire(self) -> Wire | None:
        """The client dialect a same-dialect relay may pass through to this provider."""
        return KINDS[self.kind].wire

    @property
    def chat_completions_url(self) -> str:
        """The Go proxy's base URLs have no version (``{base_url}/v1/chat/completions``);
        an OpenAI SDK base URL ends in one (``…/v1``, GLM's ``…/v4``): both work."""
        base = self.base_url.rstrip("/")
        last = base.rsplit("/", 1)[-1]
        if self.sdk_base:
            return f"{base}/chat/completions"
        versioned = len(last) > 1 and last[0] == "v" and last[1:].isdigit()
        return f"{base}/chat/completions" if versioned else f"{base}/v1/chat/completions"

    @property
    def messages_url(self) -> str:
        base = self.base_url.rstrip("/")
        return base[:-3] + "/v1/messages" if base.endswith("/v1") else base + "/v1/messages"


@dataclass(frozen=True, slots=True)
class InboundKey:
    """A key a client may send, with what it may use: ``models`` (empty: any) and limits of
    requests and tokens per minute (None: none), held across workers and instances."""

    name: str  # in the access log and metrics, never the key
    key: str
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class ProvidersFile:
    path: str
    providers: tuple[Provider, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREFIXES))
    default_model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # ak, port, … in Settings' names
    keys: tuple[InboundKey, ...] = ()


def read_providers_file(path: str) -> ProvidersFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}.") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{json_fault(exc)}") from None
    return parse_providers(raw, path)


def json_fault(exc: json.JSONDecodeError) -> str:
    """``LINE:COLUMN: not valid JSON: WHY``, the same on every Python. A trailing comma,
    the commonest slip in a hand-edited file, is reported at the comma in our own words:
    Python 3.13 points at the comma ("Illegal trailing comma…"), 3.11 and 3.12 at the
    bracket after it ("Expecting property name…" or "Expecting value")."""
    text, pos = exc.doc, exc.pos
    comma = pos if text[pos:pos + 1] == "," else -1
    if comma < 0 and text[pos:pos + 1] in ("}", "]"):
        before = text[:pos].rstrip()
        comma = len(before) - 1 if before.endswith(",") else -1
    if comma >= 0:
        closer = text[comma + 1:].lstrip()[:1]
        if closer in ("}", "]"):
            line, column = _line_and_column(text, comma)
            return (f"{line}:{column}: not valid JSON: a trailing comma before {closer!r} "
                    "(JSON allows none).")
    line, column = _line_and_column(text, pos)
    return f"{line}:{column}: not valid JSON: {exc.msg}."


def _line_and_column(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)


def parse_providers(raw: Any, path: str = "config.json") -> ProvidersFile:
    top = _Reader(path)
    if not isinstance(raw, dict):
        raise top.fault("", "the file must hold a JSON object")
    items = top.get(raw, "providers", list, required=True)
    if not items:
        raise top.fault("providers", "at least one provider is required")
    providers = tuple(_provider(top, item, f"providers[{i}]", i) for i, item in enumerate(items))
    _check_unique(top, providers)
    prefixes = _string_map(top, raw, "prefixes")
    file = ProvidersFile(
        path=path,
        providers=providers,
        aliases=_string_map(top, raw, "aliases") or {},
        prefixes=dict(DEFAULT_PREFIXES) if prefixes is None else prefixes,
        default_model=top.get(raw, "default_model", str) or "",
        settings=_file_settings(top, raw),
        keys=_inbound_keys(top, raw),
    )
    _check_names(top, file, explicit_prefixes=prefixes is not None)
    return file


def _inbound_keys(top: _Reader, raw: dict[str, Any]) -> tuple[InboundKey, ...]:
    keys: list[InboundKey] = []
    for i, item in enumerate(top.get(raw, "keys", list) or []):
        where = f"keys[{i}]"
        if not isinstance(item, dict):
            raise top.fault(where, "each key must be an object")
        models = top.get(item, "models", list, where=where) or []
        if not all(isinstance(m, str) for m in models):
            raise top.fault(f"{where}.models", "must be a list of model ids")
        limits = {name: top.get(item, name, int, where=where) for name in ("rpm", "tpm")}
        for name, value in limits.items():
            if value is not None and value < 1:
                raise top.fault(f"{where}.{name}", "must be at least 1")
        key = InboundKey(name=top.get(item, "name", str, where=where, required=True),
                         key=top.get(item, "key", str, where=where, required=True),
                         models=tuple(models), **limits)
        if len(key.key) < 8:
            raise top.fault(f"{where}.key", "must be at least 8 characters")
        if any(k.name == key.name for k in keys) or any(k.key == key.key for k in keys):
            raise top.fault(where, f"{key.name!r}: names and keys must be unique")
        keys.append(key)
    return tuple(keys)


def _check_names(top: _Reader, file: ProvidersFile, *, explicit_prefixes: bool) -> None:
    """Aliases, the default model and prefix rules must name things the file defines."""
    ids = {m.id for p in file.providers for m in p.models}
    names = {p.name for p in file.providers}
    for alias, target in file.aliases.items():
        if target not in ids:
            raise top.fault(f"aliases.{alias}", f"{target!r} is not a model id in this file")
    if file.default_model and file.default_model not in ids:
        raise top.fault("default_model", f"{file.default_model!r} is not a model id in this file")
    if explicit_prefixes:  # the built-in table may name providers a file does not have
        for prefix, provider in file.prefixes.items():
            if provider not in names:
                raise top.fault(f"prefixes.{prefix}", f"{provider!r} is not a provider name")


def _file_settings(top: _Reader, raw: dict[str, Any]) -> dict[str, Any]:
    """The file-level knobs, renamed to the Settings fields they fill."""
    names = {"ak": ("proxy_api_key", str), "port": ("port", int),
             "upstream_timeout_seconds": ("read_timeout", float),
             "log_body_max_chars": ("log_body_max_chars", int),
             "log_stream_text_preview_chars": ("log_stream_text_preview_chars", int),
             "tavily_key": ("tavily_api_key", str), "tavily_url": ("tavily_base_url", str)}
    out: dict[str, Any] = {}
    for key, (name, kind) in names.items():
        value = top.get(raw, key, int if kind is float else kind, number=kind is float)
        if value is not None:
            out[name] = kind(value)
    return out


def _provider(top: _Reader, item: Any, where: str, position: int) -> Provider:
    if not isinstance(item, dict):
        raise top.fault(where, "each provider must be an object")
    field_name = "kind" if "kind" in item else "dialect"
    kind = top.get(item, field_name, str, where=where) or "openai"
    try:
        kind_named(kind)
    except ValueError as exc:
        raise top.fault(f"{where}.{field_name}", str(exc)) from None
    keys = top.get(item, "api_keys", list, where=where) or []
    single = top.get(item, "api_key", str, where=where) or ""
    keys = [k.strip() for k in [*keys, *single.split(",")] if isinstance(k, str) and k.strip()]
    headers = _string_map(top, item, "headers", where) or {}
    models = top.get(item, "models", list, where=where) or []
    default_url = KINDS[kind].default_url
    needs_url = KINDS[kind].needs_url
    base_url = top.get(item, "base_url", str, where=where,
                       required=needs_url and not default_url) or default_url
    parts = urlsplit(base_url)
    if needs_url and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise top.fault(f"{where}.base_url", "must be an http:// or https:// URL with a host")
    return Provider(
        name=top.get(item, "name", str, where=where) or f"provider{position + 1}",
        base_url=base_url,
        kind=kind,
        keys=tuple(dict.fromkeys(keys)),
        headers=tuple(headers.items()),
        models=tuple(_model(top, m, f"{where}.models[{j}]") for j, m in enumerate(models)),
        connect_timeout=top.get(item, "connect_timeout_seconds", int, where=where, number=True),
        read_timeout=top.get(item, "read_timeout_seconds", int, where=where, number=True),
        max_connections=top.get(item, "max_connections", int, where=where) or 1000,
        max_connections_per_host=top.get(item, "max_connections_per_host", int,
                                         where=where) or 1000,
    )


def _model(top: _Reader, item: Any, where: str) -> ModelEntry:
    if not isinstance(item, dict):
        raise top.fault(where, "each model must be an object")
    model_id = top.get(item, "id", str, where=where, required=True)
    fallbacks = top.get(item, "fallbacks", list, where=where) or []
    if not all(isinstance(f, str) for f in fallbacks):
        raise top.fault(f"{where}.fallbacks", "must be a list of model ids")
    max_tokens = top.get(item, "max_tokens", int, where=where)
    if max_tokens is not None and max_tokens < 1:
        raise top.fault(f"{where}.max_tokens", "must be at least 1")
    return ModelEntry(id=model_id,
                      display_name=top.get(item, "display_name", str, where=where) or model_id,
                      remote_id=top.get(item, "remote_id", str, where=where) or model_id,
                      fallbacks=tuple(fallbacks), max_tokens=max_tokens)


def _check_unique(top: _Reader, providers: tuple[Provider, ...]) -> None:
    names: set[str] = set()
    ids: set[str] = set()
    for i, provider in enumerate(providers):
        if provider.name in names:
            raise top.fault(f"providers[{i}].name", f"{provider.name!r} is used twice")
        names.add(provider.name)
        for j, model in enumerate(provider.models):
            if model.id in ids:
                raise top.fault(f"providers[{i}].models[{j}].id", f"{model.id!r} is used twice")
            ids.add(model.id)
    for i, provider in enumerate(providers):
        for j, model in enumerate(provider.models):
            for fallback in model.fallbacks:
                if fallback not in ids:
                    raise top.fault(f"providers[{i}].models[{j}].fallbacks",
                                    f"{fallback!r} is not a model id in this file")


def _string_map(top: _Reader, raw: dict[str, Any], key: str,
                where: str = "") -> dict[str, str] | None:
    value = top.get(raw, key, dict, where=where)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value.values()):
        raise top.fault(f"{where}.{key}" if where else key, "must map names to strings")
    return {str(k): str(v) for k, v in value.items()}


class _Reader:
    """Typed reads that fail naming the file and the place."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fault(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where or 'top level'}: {what}.")

    def get(self, obj: dict[str, Any], key: str, kind: type, *, where: str = "",
            required: bool = False, number: bool = False) -> Any:
        place = f"{where}.{key}" if where else key
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fault(place, "is required")
            return None
        ok = isinstance(value, int | float) if number else isinstance(value, kind)
        if not ok or (kind is int and isinstance(value, bool)):
            expected = "a number" if number else {str: "a string", int: "an integer",
                                                  list: "a list", dict: "an object"}[kind]
            shown = type(value).__name__ if key in SECRET_FIELDS else json.dumps(value)[:40]
            raise self.fault(place, f"must be {expected}, not {shown}")
        return value
