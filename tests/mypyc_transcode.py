"""Child of tests/test_mypyc_build.py: every recorded stream through the hot path, printed.

Run with ``PYTHONPATH=TREE`` so that ``proxy`` comes from TREE (compiled or not); the test
helpers come from this checkout, appended after it. Prints one JSON object: whether
``proxy.sse`` was compiled, and for every fixture and every splitting of it (whole, byte by
byte, random pieces) the canonical events, the client bytes (without and with
``coalesce``, as the edge writes them) and the error that ended the stream, if any. The
OpenAI encoder stamps ``created`` with the clock; that number is blanked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # after PYTHONPATH: `proxy` is the tree's, `tests` this one's

import proxy.sse  # noqa: E402
from proxy.canonical import coalesce  # noqa: E402
from proxy.dialects.anthropic.stream_decode import AnthropicStreamDecoder  # noqa: E402
from proxy.dialects.anthropic.stream_encode import AnthropicStreamEncoder  # noqa: E402
from proxy.dialects.openai.stream_decode import OpenAIStreamDecoder  # noqa: E402
from proxy.dialects.openai.stream_encode import OpenAIStreamEncoder  # noqa: E402
from proxy.sse import SSEDecoder  # noqa: E402
from tests.support import FIXTURES, splits  # noqa: E402

CREATED = re.compile(rb'"created":\d+')


def decoders(dialect: str) -> tuple[Any, Any]:
    if dialect == "openai":
        return (OpenAIStreamDecoder(message_id="msg_test", model="m", input_tokens=100),
                AnthropicStreamEncoder())
    return (AnthropicStreamDecoder(message_id="msg_test", model="m", input_tokens=100),
            OpenAIStreamEncoder(chunk_id="chatcmpl-test", model="m", include_usage=True))


def transcode(dialect: str, chunks: list[bytes], join: bool) -> dict[str, Any]:
    sse = SSEDecoder()
    decoder, encoder = decoders(dialect)
    events: list[Any] = []
    out = bytearray()
    error = None
    try:
        for chunk in chunks:
            batch = decoder.feed(sse.frames(chunk))
            events += batch
            out += encoder.encode(coalesce(batch) if join else batch)
            if decoder.done or decoder.failed:
                break
        if not decoder.done:
            batch = decoder.finish(truncated=sse.truncated)
            events += batch
            out += encoder.encode(coalesce(batch) if join else batch)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"events": repr(events), "bytes": CREATED.sub(b'"created":0', bytes(out)).decode(),
            "error": error}


def main() -> None:
    results: dict[str, Any] = {}
    for dialect in ("openai", "anthropic"):
        for path in sorted((FIXTURES / dialect).glob("*.sse")):
            for n, chunks in enumerate(splits(path.read_bytes())):
                for join in (False, True):
                    key = f"{dialect}/{path.name}/{n}/{'coalesced' if join else 'plain'}"
                    results[key] = transcode(dialect, chunks, join)
    compiled = not (proxy.sse.__file__ or "").endswith(".py")
    sys.stdout.write(orjson.dumps({"compiled": compiled, "results": results}).decode())


if __name__ == "__main__":
    main()
