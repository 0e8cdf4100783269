"""Settings: flags, then the environment, then ``.env``, then defaults; frozen once loaded.

The only reader of ``os.environ`` in the server. Every setting is listed, with its default,
in ``.env.example``; ``SETTINGS`` below is the single table both the flag parser and the
environment reader are built from, so the three can never disagree. Settings of the
projects this one grows from are read through ``proxy.migration``, at the same levels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from proxy import __version__, migration
from proxy.kinds import KINDS
from proxy.providers import ConfigError, ProvidersFile, read_providers_file
from proxy.state.factory import check_url


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3578
    workers: int = 1
    grace_period: float = 30.0
    listen_backlog: int = 2048
    upstream_url: str = ""
    upstream_dialect: str = "openai"
    upstream_api_key: str = ""
    model: str = ""
    model_override: str = "auto"
    proxy_api_key: str = ""
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    max_body_bytes: int = 32 * 1024 * 1024
    body_read_timeout: float = 60.0
    max_frame_bytes: int = 16 * 1024 * 1024
    max_connections: int = 1000
    max_connections_per_host: int = 1000
    log_level: str = "INFO"
    log_format: str = "text"
    session_log_dir: str = ""
    ping_interval: float = 15.0
    max_tokens_cap: int = 0
    upstream_max_tokens_field: str = "max_tokens"
    send_reasoning_effort: bool = True
    replay_reasoning: bool = False
    system_messages: str = "merge"
    default_max_tokens: int = 16384
    system_prompt: str = ""
    anthropic_version: str = "2023-06-01"
    anthropic_beta: str = ""
    state_url: str = ""
    state_directory: str = ""
    thread_ttl: float = 1800.0
    thread_pool_size: int = 4
    claude_cli: str = ""
    pool_size: int = 3
    claude_timeout: float = 120.0
    claude_tools: str = ""
    claude_code_headers: bool = False
    claude_code_profile: str = ""  # JSON object of headers over the built-in profile
    config_path: str = ""
    log_body_max_chars: int = 4096
    log_stream_text_preview_chars: int = 256
    # Web search and fetch through Tavily (proxy/web_tools); checked at start by
    # web_tools.configured, off without a key.
    tavily_api_key: str = ""
    tavily_base_url: str = ""  # unset: Tavily's own (a copied .env.example must not
    # override the providers file's tavily_url)
    tavily_proxy_address: str = ""
    local_proxy_address: str = ""
    tavily_max_results: int = 5
    tavily_search_depth: str = "basic"
    tavily_topic: str = "general"
    tavily_fetch_max_chars: int = 50000
    providers_file: ProvidersFile | None = None  # read from config_path at start-up
    seed_notes: tuple[migration.Note, ...] = ()  # what was read from other projects' settings

    @property
    def upstream_configured(self) -> bool:
        kind = KINDS.get(self.upstream_dialect)
        return bool(self.upstream_url or self.providers_file
                    or (kind is not None and not kind.needs_url))

    @property
    def anthropic(self) -> bool:
        return self.upstream_dialect == "anthropic"

    def upstream_model(self, requested: str) -> str:
        """MODEL replaces the client's model when overriding, else fills in a missing one.
        ``auto`` overrides for OpenAI-compatible upstreams (Claude Code names Claude models
        they do not know) and only fills in for Anthropic ones."""
        override = self.model_override == "true" or (
            self.model_override == "auto" and not self.anthropic)
        if self.model and (override or not requested):
            return self.model
        return requested


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str  # Settings field; the environment variable is its upper-case
    flag: str
    help: str


SETTINGS = (
    _Spec("config_path", "--config", "providers file (JSON; the Go claude-proxy's config.json "
          "works as is): several upstreams, keys, models, aliases, fallbacks"),
    _Spec("host", "--host", "address to listen on"),
    _Spec("port", "--port", "port to listen on"),
    _Spec("workers", "--workers", "processes serving the port (SO_REUSEPORT, Linux): each "
          "with its own upstream connections, key health and learned limits; a worker "
          "that dies is replaced"),
    _Spec("grace_period", "--grace-period", "seconds requests in flight (streams included) "
          "may take to finish after SIGTERM or SIGINT, before they are cut"),
    _Spec("listen_backlog", "--listen-backlog", "connections the kernel may hold for the "
          "proxy before it accepts them (per worker); a burst beyond it is dropped and "
          "retried a second later. Linux caps it at net.core.somaxconn"),
    _Spec("upstream_url", "--upstream", "upstream base URL as its SDK takes it: OpenAI-compatible "
          "ending in /v1 (https://api.deepseek.com/v1), Anthropic without it "
          "(https://api.anthropic.com)"),
    _Spec("upstream_dialect", "--upstream-dialect", "the upstream's kind: "
          + ", ".join(KINDS)),
    _Spec("upstream_api_key", "--api-key", "key sent upstream; unset, the client's own key is "
          "passed through (never the proxy's key, never an Anthropic key to another provider)"),
    _Spec("model", "--model", "upstream model; see MODEL_OVERRIDE. Translated answers name "
          "the model the client asked for; relayed ones (same dialect both sides) come back "
          "byte for byte, naming the model the upstream reports"),
    _Spec("model_override", "--model-override", "true: MODEL replaces every requested model; "
          "false: MODEL only fills in a missing one; auto: true for openai upstreams, false "
          "for anthropic ones"),
    _Spec("proxy_api_key", "--proxy-api-key", "key clients must send (x-api-key or Bearer); "
          "unset, the proxy is open"),
    _Spec("connect_timeout", "--connect-timeout", "seconds to connect upstream"),
    _Spec("read_timeout", "--read-timeout", "seconds the upstream may stay silent (no total "
          "timeout: long generations are fine)"),
    _Spec("max_body_bytes", "--max-body-bytes", "largest request body accepted (413 beyond)"),
    _Spec("body_read_timeout", "--body-read-timeout", "seconds a client may take to send its "
          "request body (408 beyond)"),
    _Spec("max_frame_bytes", "--max-frame-bytes", "largest single upstream stream frame (an "
          "SSE event or NDJSON line); a longer one fails the stream cleanly"),
    _Spec("max_connections", "--max-connections", "upstream connections open at once, in all"),
    _Spec("max_connections_per_host", "--max-connections-per-host", "upstream connections "
          "open at once to one host"),
    _Spec("log_level", "--log-level", "DEBUG, INFO, WARNING or ERROR (DEBUG adds request and "
          "response bodies, keys masked)"),
    _Spec("log_format", "--log-format", "text or json (JSON lines)"),
    _Spec("session_log_dir", "--session-log-dir", "folder for one JSON file per request "
          "(request, response, timings; keys masked); unset, none"),
    _Spec("ping_interval", "--ping-interval", "seconds of stream silence before a keep-alive "
          "(0: none)"),
    _Spec("max_tokens_cap", "--max-tokens-cap", "clamp max_tokens sent upstream (0: no clamp)"),
    _Spec("upstream_max_tokens_field", "--upstream-max-tokens-field",
          "max_tokens or max_completion_tokens (o-series)"),
    _Spec("send_reasoning_effort", "--send-reasoning-effort", "map thinking/effort to "
          "reasoning_effort (true/false; false for upstreams that reject it)"),
    _Spec("replay_reasoning", "--replay-reasoning", "send earlier thinking back as "
          "reasoning_content (DeepSeek tool loops need it)"),
    _Spec("system_messages", "--system-messages", "merge: system messages after the first "
          "turn join the leading system prompt (most chat templates allow no other); "
          "inline: they stay in place, for OpenAI-compatible upstreams that accept it"),
    _Spec("default_max_tokens", "--default-max-tokens", "max_tokens for an Anthropic upstream "
          "when an OpenAI client sets none"),
    _Spec("system_prompt", "--system-prompt", "system prompt added to requests that have none"),
    _Spec("anthropic_version", "--anthropic-version", "anthropic-version header sent to an "
          "Anthropic upstream when the client sends none"),
    _Spec("anthropic_beta", "--anthropic-beta", "anthropic-beta flags added for an Anthropic "
          "upstream (comma-separated)"),
    _Spec("state_url", "--state-url", "where state shared by workers and instances lives "
          "(key health, learned limits, backboard's threads, rate windows): memory://, "
          "sqlite:///path or redis://host:6379/0?prefix=name:; unset: memory with one "
          "worker, a SQLite file in STATE_DIRECTORY with several"),
    _Spec("state_directory", "--state-directory", "folder of the default SQLite state file "
          "(systemd sets it from StateDirectory=); unset: ~/.local/state/llm-dialect-proxy"),
    _Spec("thread_ttl", "--thread-ttl", "backboard: seconds a conversation's thread is "
          "remembered after its last turn (then its history is replayed to a fresh one)"),
    _Spec("thread_pool_size", "--thread-pool-size", "backboard: warm threads kept ready per "
          "key, so a new conversation never waits for one"),
    _Spec("claude_cli", "--claude-cli", "claude-code kind: the Claude Code CLI to run; unset: "
          "claude on the PATH, else the one the claude-agent-sdk package ships"),
    _Spec("pool_size", "--pool-size", "claude-code kind: CLI processes kept ready ahead of "
          "demand (claudebridge's POOL_SIZE and -w; not --workers)"),
    _Spec("claude_timeout", "--claude-timeout", "claude-code kind: the longest silence from "
          "the CLI, in seconds, before its request fails"),
    _Spec("claude_tools", "--claude-tools", "claude-code kind: the CLI's own tools to allow, "
          "comma-separated (e.g. WebSearch,WebFetch); unset: none"),
    _Spec("claude_code_headers", "--claude-code-headers", "present requests to an Anthropic "
          "upstream as Claude Code does (user agent, x-app, betas); may breach the "
          "provider's terms"),
    _Spec("claude_code_profile", "--claude-code-profile", "JSON object of headers that "
          "replace or extend the built-in Claude Code profile, e.g. a newer user-agent"),
    _Spec("log_body_max_chars", "--log-body-max-chars", "longest body excerpt in a debug log "
          "line"),
    _Spec("log_stream_text_preview_chars", "--log-stream-text-preview-chars", "longest "
          "streamed-text preview in a debug log line"),
    _Spec("tavily_api_key", "--tavily-api-key", "Tavily key: the proxy then runs web search "
          "and fetch (Anthropic's web_search/web_fetch server tools, OpenAI's "
          "web_search_options) for every backend; unset, they are left out and the client "
          "is told (the providers file's tavily_key also sets it)"),
    _Spec("tavily_base_url", "--tavily-base-url", "Tavily API base URL; unset, "
          "https://api.tavily.com (the providers file's tavily_url also sets it)"),
    _Spec("tavily_proxy_address", "--tavily-proxy-address", "outbound HTTP proxy for Tavily "
          "calls only (http://host:port); unset, LOCAL_PROXY_ADDRESS"),
    _Spec("local_proxy_address", "--local-proxy-address", "outbound HTTP proxy for Tavily "
          "calls when TAVILY_PROXY_ADDRESS is unset"),
    _Spec("tavily_max_results", "--tavily-max-results", "search results per web search, "
          "1 to 20"),
    _Spec("tavily_search_depth", "--tavily-search-depth", "basic or advanced (advanced costs "
          "Tavily two credits a search)"),
    _Spec("tavily_topic", "--tavily-topic", "general, news or finance"),
    _Spec("tavily_fetch_max_chars", "--tavily-fetch-max-chars", "longest page text a web "
          "fetch gives the model, at least 1000 characters"),
)


DESCRIPTION = (
    "Serve the Anthropic Messages API (Claude Code, the anthropic SDK) and the OpenAI Chat "
    "Completions API (the openai SDK, LiteLLM, Continue…) in front of an OpenAI-compatible "
    "upstream or the Anthropic API: translated where the client's dialect differs from the "
    "upstream's, relayed byte for byte where they match. Each flag overrides the environment "
    "variable named after it, which overrides .env, which overrides the default.")
BOOLEANS = frozenset(f.name for f in fields(Settings) if f.type == "bool")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-dialect-proxy", description=DESCRIPTION)
    parser.add_argument("--version", action="version",
                        version=f"llm-dialect-proxy {__version__}")
    defaults = Settings()
    for spec in SETTINGS:
        env = spec.name.upper()
        default = getattr(defaults, spec.name)
        shown = "(unset)" if default == "" else default
        help = f"{spec.help}. Env {env}, default {shown}."
        if spec.name in BOOLEANS:
            # A bare switch means true (--claude-code-headers); a value still works (… false).
            parser.add_argument(spec.flag, dest=spec.name, default=None, metavar=env,
                                nargs="?", const="true", help=help)
        else:
            parser.add_argument(spec.flag, dest=spec.name, default=None, metavar=env,
                                help=help)
    parser.add_argument("--env-file", default=".env", help="dotenv file to read (default .env)")
    seeds = parser.add_argument_group(
        "flags of the projects this one grows from (docs/migrating.md)")
    for entry in migration.flags():
        if entry.metavar is None:
            seeds.add_argument(entry.name, dest=_seed_dest(entry.name), action="store_const",
                               const="", default=None, help=migration.flag_help(entry))
        else:
            seeds.add_argument(entry.name, dest=_seed_dest(entry.name), default=None,
                               metavar=entry.metavar, help=migration.flag_help(entry))
    return parser


def _seed_dest(flag: str) -> str:
    return "seed_" + flag.lstrip("-").replace("-", "_")


def load_settings(argv: Sequence[str] | None = None,
                  environ: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """``cwd``: where a ``config.json`` is looked for when no upstream is given (the Go
    claude-proxy's default); the working directory unless said."""
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    dotenv = {k: v for k, v in dotenv_values(args.env_file).items() if v is not None}
    seed_flags = {e.name: getattr(args, _seed_dest(e.name)) for e in migration.flags()}
    found = migration.find(seed_flags, environ, dotenv)
    migration.refuse(found)
    names = [spec.name.upper() for spec in SETTINGS]
    # An empty value means "unset", so a copied .env.example (PROXY_API_KEY=) never
    # overrides the providers file with nothing.
    layers = {
        "flag": {n: v for n in names if (v := getattr(args, n.lower())) not in (None, "")},
        "environment": {n: environ[n] for n in names if environ.get(n)},
        ".env": {n: dotenv[n] for n in names if dotenv.get(n)},
    }
    notes, taken = migration.apply(found, layers)
    raw = {**layers[".env"], **layers["environment"], **layers["flag"]}
    notes += migration.fallbacks(raw, found, taken, Path.cwd() if cwd is None else cwd)
    types = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {spec.name: _convert(raw[spec.name.upper()],
                                                  str(types[spec.name]), spec.name.upper())
                              for spec in SETTINGS if spec.name.upper() in raw}
    notes += migration.warnings(found)
    file = _providers_file(values.get("config_path", ""))
    if file is not None:
        in_file = migration.find_in_file(file.path)
        migration.refuse(in_file)
        notes += migration.warnings(in_file)
        # The file fills what flags, environment and .env left unset.
        values = {**file.settings, **values, "providers_file": file}
    settings = Settings(**values, seed_notes=tuple(notes))
    _check_choices(settings)
    url = settings.upstream_url or KINDS[settings.upstream_dialect].default_url
    return replace(settings, upstream_url=normalize_upstream(url, settings.anthropic))


def _providers_file(path: str) -> ProvidersFile | None:
    if not path:
        return None
    try:
        return read_providers_file(path)
    except ConfigError as exc:
        raise SystemExit(f"llm-dialect-proxy: {exc}") from None


def _check_ranges(settings: Settings) -> None:
    for name, low, strict in (("workers", 1, False), ("port", 0, False),
                              ("connect_timeout", 0, True), ("read_timeout", 0, True),
                              ("max_body_bytes", 0, True), ("ping_interval", 0, False),
                              ("body_read_timeout", 0, True), ("max_frame_bytes", 1024, False),
                              ("thread_ttl", 0, True), ("thread_pool_size", 0, False),
                              ("pool_size", 1, False), ("claude_timeout", 0, True),
                              ("grace_period", 0, False), ("max_connections", 1, False),
                              ("max_connections_per_host", 1, False)):
        value = getattr(settings, name)
        if value < low or (strict and value == low):
            bound = f"more than {low}" if strict else f"at least {low}"
            raise SystemExit(f"llm-dialect-proxy: {name.upper()} must be {bound}, not {value}.")


def _check_upstream(url: str) -> None:
    """A URL without a scheme would fail every request later (InvalidUrlClientError):
    refuse it now, as the providers file does."""
    parts = urlsplit(url.strip())
    if parts.scheme in ("http", "https") and parts.hostname:
        return
    guess = url.strip().split("://", 1)[-1].lstrip("/")
    raise SystemExit(f"llm-dialect-proxy: UPSTREAM_URL must be an http:// or https:// URL "
                     f"with a host, not {url!r}; did you mean https://{guess}?")


def _check_choices(settings: Settings) -> None:
    _check_ranges(settings)
    try:
        check_url(settings.state_url)
    except ValueError as exc:
        raise SystemExit(f"llm-dialect-proxy: {exc}") from None
    if settings.upstream_url:
        _check_upstream(settings.upstream_url)
    if settings.claude_code_profile:
        try:
            profile = json.loads(settings.claude_code_profile)
        except ValueError:
            profile = None
        if not isinstance(profile, dict) or not all(
                isinstance(v, str) for v in profile.values()):
            raise SystemExit("llm-dialect-proxy: CLAUDE_CODE_PROFILE must be a JSON object "
                             "of header names to strings.")
    for name, allowed in (("upstream_dialect", tuple(KINDS)),
                          ("model_override", ("auto", "true", "false")),
                          ("system_messages", ("merge", "inline")),
                          ("log_format", ("text", "json")),
                          ("upstream_max_tokens_field", ("max_tokens", "max_completion_tokens"))):
        if getattr(settings, name) not in allowed:
            raise SystemExit(f"llm-dialect-proxy: {name.upper()} must be one of "
                             f"{', '.join(allowed)}, not {getattr(settings, name)!r}.")


def _convert(raw: str, kind: str, name: str) -> Any:
    converters: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _bool}
    convert = converters.get(kind, str)
    try:
        return convert(raw.strip())
    except ValueError:
        raise SystemExit(f"llm-dialect-proxy: {name}={raw!r} is not a valid {kind}.") from None


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


def normalize_upstream(url: str, anthropic: bool = False) -> str:
    """A base URL as the upstream's SDK takes it, whatever the user pasted: a2o's habit of
    a full ``…/chat/completions`` URL, or an Anthropic URL with ``/v1`` or ``/v1/messages``."""
    url = url.strip().rstrip("/")
    suffixes = ("/v1/messages", "/v1") if anthropic else ("/chat/completions", "/completions")
    for suffix in suffixes:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def child_environment() -> dict[str, str]:
    """The proxy's environment, for a child process that should see what the proxy sees
    (the Claude Code CLI: its API key, OAuth token, HOME with a ``claude login``)."""
    return dict(os.environ)


def claude_cli(settings: Settings) -> str:
    """The Claude Code CLI to run: CLAUDE_CLI, else ``claude`` on the PATH, else the one
    the ``claude-agent-sdk`` package ships (a CLI without npm), else plain ``claude`` (the
    pool then says it is missing, and what to install)."""
    if settings.claude_cli:
        return settings.claude_cli
    found = shutil.which("claude")
    if found:
        return found
    try:
        import claude_agent_sdk  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "claude"
    bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(bundled) if bundled.is_file() else "claude"
