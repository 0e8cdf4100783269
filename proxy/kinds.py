"""The kinds of backend a provider can be, in one typed place.

A provider's *kind* says how the proxy reaches it (an HTTP API of one dialect, an
assistant/thread API, a local CLI); its *wire* says which client dialect a same-dialect
relay may pass through to it byte for byte (none, for kinds that speak no client
dialect). Adding a backend is its module plus one line in ``KINDS``; the module is named
as ``"package.module:Class"`` and imported only when an app starts, so this table (read
by the settings and the providers file) stays free of I/O libraries. Sans-I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Wire = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    wire: Wire | None  # what a same-dialect relay passes through; None: always translated
    backend: str  # "module:Class", the class implementing proxy.backends.base.Backend
    needs_url: bool = True  # a base URL must be configured
    default_url: str = ""  # used when none is configured
    # A refused provider key is normally the proxy's fault (a 502); for kinds whose keys
    # the client may bring or that speak for the client's account, the client hears it.
    passes_auth_errors: bool = False


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("openai", "openai", "proxy.backends.openai_http:OpenAIBackend"),
    Kind("anthropic", "anthropic", "proxy.backends.anthropic_http:AnthropicBackend"),
    Kind("backboard", None, "proxy.backends.backboard:BackboardBackend",
         default_url="https://app.backboard.io/api", passes_auth_errors=True),
    Kind("claude-code", None, "proxy.backends.claude_code:ClaudeCodeBackend", needs_url=False),
)}


def kind_named(name: str) -> Kind:
    """The kind called ``name``; a ValueError listing the kinds there are otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"must be one of {', '.join(KINDS)}, not {name!r}") from None
