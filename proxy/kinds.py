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


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("openai", "openai", "proxy.backends.openai_http:OpenAIBackend"),
    Kind("anthropic", "anthropic", "proxy.backends.anthropic_http:AnthropicBackend"),
)}


def kind_named(name: str) -> Kind:
    """The kind called ``name``; a ValueError listing the kinds there are otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"must be one of {', '.join(KINDS)}, not {name!r}") from None
