"""Which headers cross the proxy, both ways, and the credentials each backend kind sends.

Pure (no I/O), and table-tested. Hop-by-hop headers belong to one connection and never
cross a proxy (RFC 9110 section 7.6.1): ``Connection``, every header that ``Connection``
names, ``Proxy-Connection``, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``, ``Upgrade``
(and, as Go's ReverseProxy does, ``Trailer`` and the proxy-auth pair). ``Host`` and
``Content-Length`` are the client library's to set for the new request. A client's own
credentials and encodings never go up as it sent them: the proxy sets the credential
for the provider (``credentials``), and asks for plain bytes so a relay can pass them on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from proxy import __version__
from proxy.config import Settings

HOP_BY_HOP = frozenset({
    "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade",
    "trailer", "proxy-authenticate", "proxy-authorization", "host", "content-length",
})
CLIENT_ONLY = frozenset({"authorization", "x-api-key", "accept-encoding", "content-encoding"})
USER_AGENT = f"llm-dialect-proxy/{__version__}"

# How Claude Code 2.1.330 presents itself (research/claude-code.md 3.2), in one place.
# Using it may breach the provider's terms; it is off unless CLAUDE_CODE_HEADERS is set,
# and CLAUDE_CODE_PROFILE (a JSON object of headers) replaces or extends any of it.
CLAUDE_CODE_PROFILE = {
    "user-agent": "claude-cli/2.1.330 (external, cli)",
    "x-app": "cli",
    "anthropic-dangerous-direct-browser-access": "true",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                      "context-management-2025-06-27,effort-2025-11-24",
}


def end_to_end(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The end-to-end headers, lower-cased: hop-by-hop ones and the ones ``Connection``
    names are dropped. Repeated names keep their last value."""
    pairs = [(name.lower(), value) for name, value in headers]
    named = {token.strip().lower() for name, value in pairs if name == "connection"
             for token in value.split(",") if token.strip()}
    return {name: value for name, value in pairs if name not in HOP_BY_HOP and name not in named}


def from_client(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A client's headers that may go upstream: end-to-end, minus its credentials and
    encodings (ours to set)."""
    return {k: v for k, v in end_to_end(headers).items() if k not in CLIENT_ONLY}


def from_upstream(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """An upstream answer's headers that may go back to the client, repeats kept. The
    body is relayed as aiohttp hands it over, already decoded: no content-encoding."""
    pairs = list(headers)
    kept = end_to_end(pairs)
    return [(name, value) for name, value in pairs
            if name.lower() in kept and name.lower() != "content-encoding"]


def credentials(kind: str, key: str | None) -> dict[str, str]:
    """The header that carries ``key`` to a provider of ``kind``."""
    if not key:
        return {}
    if kind == "anthropic":
        # Subscription OAuth tokens go as a bearer token; API keys as x-api-key.
        if key.startswith("sk-ant-oat"):
            return {"authorization": f"Bearer {key}"}
        return {"x-api-key": key}
    if kind == "backboard":
        return {"x-api-key": key}
    return {"authorization": f"Bearer {key}"}


def openai_headers(extra: Mapping[str, str], key: str | None) -> dict[str, str]:
    """Headers for a translated call to an OpenAI-compatible provider."""
    return {"content-type": "application/json", "accept": "text/event-stream",
            "user-agent": USER_AGENT, **extra, **credentials("openai", key)}


def anthropic_headers(settings: Settings, key: str | None,
                      client: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers for an Anthropic provider, translated or relayed. A client's own
    ``anthropic-version`` and ``anthropic-beta`` win over the configured ones (the gateway
    contract: never add or drop a beta behind the client's back); configured betas are
    added to them."""
    client = client or {}
    headers = {"content-type": "application/json", "accept": "application/json",
               "user-agent": USER_AGENT,
               "anthropic-version": client.get("anthropic-version") or settings.anthropic_version}
    betas = [client.get("anthropic-beta", ""), settings.anthropic_beta]
    if settings.claude_code_headers:
        profile = {**CLAUDE_CODE_PROFILE, **json.loads(settings.claude_code_profile or "{}")}
        betas.append(profile.pop("anthropic-beta", ""))
        headers.update({k.lower(): v for k, v in profile.items()})
    merged = list(dict.fromkeys(b.strip() for part in betas for b in part.split(",")
                                if b.strip()))
    if merged:
        headers["anthropic-beta"] = ",".join(merged)
    else:
        headers.pop("anthropic-beta", None)
    headers.update(credentials("anthropic", key))
    return headers
