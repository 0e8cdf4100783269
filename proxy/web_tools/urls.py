"""Which URLs web_fetch may fetch: the pure half of the rule.

Sans-I/O (the DNS half is ``resolve.py``). As Anthropic's own tool does, web_fetch only
fetches a URL that already appeared in the conversation: in the user's messages, in the
results of the client's tools, or in earlier search and fetch results. A model steered by a
page therefore cannot send data out by making a URL up (``https://evil.example/?q=<secret>``
is in nobody's messages). On top of that: http(s) only, no credentials in the URL, no
loopback, private, link-local, metadata or otherwise non-public host, the tool's domain
lists. URLs are compared normalised (scheme and host lowercased, default port and fragment
dropped, an empty path made ``/``), never by prefix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    ServerToolResult,
    TextPart,
    ToolResultPart,
    ToolUsePart,
    WebFetchPage,
)
from proxy.web_tools.spec import FetchSpec, UrlSources

MAX_URL_CHARS = 2048  # what browsers and Claude Code's own WebFetch accept, about
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
_TRAILING = ".,;:!?*_~"
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".arpa", ".lan", ".home", ".corp",
                      ".intranet")


def urls_in_text(text: str) -> list[str]:
    """The http(s) URLs written in ``text``, without the punctuation around them (a full
    stop after a link, the parenthesis that closes a Markdown link)."""
    found = []
    for match in _URL.finditer(text):
        url = match.group()
        while url:
            # an unbalanced ")" closes the parenthesis or Markdown link around the URL
            if url[-1] in _TRAILING or (url[-1] == ")" and url.count(")") > url.count("(")):
                url = url[:-1]
            else:
                break
        found.append(url)
    return found


def normalize_url(url: str) -> str | None:
    """The form URLs are compared in; None for anything not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        host = f"{parts.netloc.rpartition('@')[0]}@{host}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def conversation_urls(messages: Sequence[Message], sources: UrlSources | None = None
                      ) -> set[str]:
    """The normalised URLs a request makes fetchable, as ``sources`` allows: the user's text,
    documents and images, and the results of the client's own tools. The assistant's text
    and the system prompt never count: the first is the model's, the second no user's."""
    sources = sources or UrlSources()
    tool_names = {part.id: part.name for message in messages if message.role == "assistant"
                  for part in message.parts if isinstance(part, ToolUsePart)}
    found: list[str] = []
    for message in messages:
        if message.role != "user":
            continue
        for part in message.parts:
            if isinstance(part, ToolResultPart):
                name = tool_names.get(part.tool_use_id, "")
                if sources.client_tool_results.admits(name):
                    found += _part_urls(part.content)
            elif sources.user_input:
                found += _part_urls((part,))
    return {url for url in map(normalize_url, found) if url is not None}


def result_urls(result: ServerToolResult) -> set[str]:
    """The normalised URLs a search or fetch result makes fetchable: every hit's URL; a
    fetched page's own URL and the links in its text."""
    if isinstance(result, tuple):
        raw = [hit.url for hit in result]
    elif isinstance(result, WebFetchPage):
        raw = [result.url, *urls_in_text(result.text)]
    else:
        raw = []
    return {url for url in map(normalize_url, raw) if url is not None}


def fetch_refusal(url: object, *, known: set[str], spec: FetchSpec) -> str | None:
    """Why ``url`` may not be fetched, as a web_fetch error code, or None. ``known`` holds
    normalised URLs."""
    if not isinstance(url, str) or not url.strip():
        return "invalid_tool_input"
    if len(url) > MAX_URL_CHARS:
        return "url_too_long"
    normal = normalize_url(url)
    if normal is None:
        scheme = url.strip().partition(":")[0].lower()
        return "invalid_tool_input" if scheme in ("http", "https") else "url_not_allowed"
    parts = urlsplit(normal)
    host = parts.hostname or ""
    if parts.username is not None or host_refused(host):
        return "url_not_allowed"
    if spec.blocked_domains and domain_matches(normal, spec.blocked_domains):
        return "url_not_allowed"
    if spec.allowed_domains and not domain_matches(normal, spec.allowed_domains):
        return "url_not_allowed"
    if normal not in known:
        return "url_not_in_prior_context"
    return None


def domain_matches(url: str, domains: Iterable[str]) -> bool:
    """Anthropic's domain rule: ``example.com`` covers its subdomains, ``docs.example.com``
    only that subdomain, ``example.com/blog`` only paths under /blog."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    path = parts.path or "/"
    for domain in domains:
        domain_host, slash, domain_path = domain.removeprefix("*.").partition("/")
        if host != domain_host and not host.endswith("." + domain_host):
            continue
        prefix = "/" + domain_path.rstrip("/") if slash else ""
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def host_refused(host: str) -> bool:
    """A host no fetch may go to, judged from its name alone: ``localhost`` and other
    internal names, single-label names (an intranet's), IP literals that are not public,
    and numeric forms like ``2130706433`` or ``0x7f.1`` that resolvers read as addresses."""
    host = host.lower().rstrip(".").strip("[]")
    if not host:
        return True
    try:
        return not address_is_public(str(ipaddress.ip_address(host)))
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        return True
    return ("." not in host or host == "localhost" or host.endswith(_INTERNAL_SUFFIXES))


def address_is_public(address: str) -> bool:
    """A globally routable unicast address. That leaves out loopback, private, link-local
    (169.254.169.254, the cloud metadata address, among them), shared (100.64/10, another
    provider's metadata), reserved, documentation and multicast space, and IPv6 forms that
    carry one of those IPv4 addresses inside (mapped, 6to4, NAT64)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if inner is not None:
            return address_is_public(str(inner))
    return ip.is_global and not ip.is_multicast


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _part_urls(parts: Iterable[object]) -> list[str]:
    found: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            found += urls_in_text(part.text)
        elif isinstance(part, DocumentPart):
            found += [part.url] if part.url else []
            found += urls_in_text(part.text or "")
        elif isinstance(part, ImagePart) and part.url:
            found.append(part.url)
    return found
