"""Keeping secrets out of what leaves the proxy: one redaction for every byte that comes
from an upstream and goes to a client or a log.

``Masker`` replaces every secret the proxy holds (each provider's keys, the proxy's own
key, and per call the client's key when it is passed through) and key-shaped strings
(``sk-…``, bearer tokens, ``"api_key": "…"`` fields) with ``***``. Upstreams quote the
keys they refuse ("Incorrect API key provided: sk-…"); none of that may reach a client.
Sans-I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SECRET = 6  # shorter "secrets" would mask ordinary words
_KEY_SHAPES = [
    (re.compile(r"sk-[A-Za-z0-9_\-]{8,}"), "***"),  # OpenAI, Anthropic, DeepSeek, OpenRouter
    (re.compile(r"(bearer\s+)[A-Za-z0-9_\-.=:/+]{8,}", re.I), r"\1***"),
    (re.compile(r'("(?:x-api-key|api_key|api-key|apikey|api_keys|authorization|ak|token|'
                r'password|secret)"\s*:\s*")[^"]{4,}', re.I), r"\1***"),
]


class Masker:
    """Masks the configured secrets and key-shaped strings in any text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        known = [re.escape(s) for s in sorted({s for s in secrets if s}, key=len, reverse=True)
                 if len(s) >= MIN_SECRET]
        self._known = re.compile("|".join(known)) if known else None

    def __call__(self, text: str, extra: Iterable[str | None] = ()) -> str:
        """``text`` with every secret masked; ``extra``: this call's own secrets too."""
        for secret in extra:
            if secret and len(secret) >= MIN_SECRET:
                text = text.replace(secret, "***")
        if self._known is not None:
            text = self._known.sub("***", text)
        for pattern, replacement in _KEY_SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def body(self, raw: bytes, extra: Iterable[str | None] = ()) -> bytes:
        """A small body (an error) masked; the very same bytes when nothing was secret."""
        text = raw.decode("utf-8", "replace")
        masked = self(text, extra)
        return raw if masked == text else masked.encode()
