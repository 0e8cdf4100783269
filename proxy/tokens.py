"""A local estimate of a request's input tokens, the same for count_tokens and message_start.

Sans-I/O. No tokenizer is shipped: an upstream's own tokenizer is unknown to us, and Claude
Code only needs a number of the right size (its context bar and auto-compaction read it;
the authoritative count arrives in the final ``message_delta``). The rule: about four ASCII
characters a token, and about one token per non-ASCII character (CJK text tokenizes far
denser than English), plus a small overhead per message, tool and image.
"""

from __future__ import annotations

import orjson

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Part,
    Request,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)

PER_MESSAGE = 4
PER_TOOL = 8
PER_IMAGE = 1500  # a typical screenshot; Anthropic counts (width*height)/750
BASE64_BYTES_PER_DOCUMENT_TOKEN = 50  # a PDF page is ~100 KB of base64, ~2000 tokens


def estimate_text(text: str) -> int:
    """Tokens in one string: len/4 for ASCII, one per extra UTF-8 byte pair beyond it."""
    n = len(text)
    if text.isascii():
        return (n + 3) // 4
    extra = len(text.encode("utf-8")) - n
    return (n + 3) // 4 + extra // 2


def estimate_input_tokens(request: Request) -> int:
    total = sum(estimate_text(s) for s in request.system)
    for message in request.messages:
        total += PER_MESSAGE + sum(_estimate_part(part) for part in message.parts)
    for tool in request.tools:
        total += PER_TOOL + estimate_text(tool.name) + estimate_text(tool.description or "")
        total += estimate_text(orjson.dumps(tool.input_schema).decode())
    return max(total, 1)


def _estimate_part(part: Part) -> int:
    if isinstance(part, TextPart):
        return estimate_text(part.text)
    if isinstance(part, ThinkingPart):
        return estimate_text(part.text)
    if isinstance(part, ToolUsePart):
        return estimate_text(part.name) + estimate_text(orjson.dumps(part.input).decode())
    if isinstance(part, ToolResultPart):
        return PER_MESSAGE + sum(_estimate_part(p) for p in part.content)
    if isinstance(part, ImagePart):
        return PER_IMAGE
    if isinstance(part, DocumentPart):
        if part.text is not None:
            return estimate_text(part.text)
        return max(len(part.data or "") // BASE64_BYTES_PER_DOCUMENT_TOKEN, PER_IMAGE)
    return 0
