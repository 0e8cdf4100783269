"""The figures of scripts/cli_history.py: what each request the Claude Code CLI sent holds
(messages, content blocks, cache breakpoints), what prompt caching could reuse from the
previous request, and the per-turn table with its totals and medians. Pure functions, no
I/O, so they are tested on canned bodies (tests/test_cli_history.py)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BILLING = "x-anthropic-billing-header"


# --- what a request to the fake holds ---------------------------------------------------


def _unit(section: str, block: Any, billing: bool) -> tuple[str, int]:
    """A prompt block as compared turn to turn (its cache_control left out) and its size."""
    if isinstance(block, dict):
        block = {k: v for k, v in block.items() if k != "cache_control"}
        text = block.get("text") if block.get("type") == "text" else None
        if isinstance(text, str) and not billing and text.startswith(BILLING):
            block["text"] = BILLING  # its per-session suffix ignored
        size = len(text) if isinstance(text, str) else len(json.dumps(block))
    else:
        size = len(str(block))
    return section + json.dumps(block, sort_keys=True), size


def prompt_units(body: dict[str, Any], billing: bool = True
                 ) -> tuple[list[tuple[str, int]], list[str], list[int]]:
    """The prompt in the API's cache order (tools, system, messages), one unit a block:
    (the units, the breakpoints' places, the breakpoints' unit indexes)."""
    units: list[tuple[str, int]] = []
    places: list[str] = []
    marks: list[int] = []

    def add(place: str, section: str, block: Any) -> None:
        if isinstance(block, dict) and "cache_control" in block:
            places.append(place)
            marks.append(len(units))
        units.append(_unit(section, block, billing))

    for i, tool in enumerate(body.get("tools") or []):
        add(f"t{i}", "tool", tool)
    system = body.get("system") or []
    for i, block in enumerate([{"type": "text", "text": system}] if isinstance(system, str)
                              else system):
        add(f"s{i}", "system", block)
    for m, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for b, block in enumerate(blocks or []):
            add(f"m{m}.{b}", f"{message.get('role')}#{m}", block)
    return units, places, marks


def reused_chars(previous: dict[str, Any] | None, body: dict[str, Any], billing: bool) -> int:
    """Characters of ``body`` a cache written by ``previous`` could serve: the longest
    prefix ending at one of the previous request's breakpoints that is identical here."""
    if previous is None:
        return 0
    before, _, marks = prompt_units(previous, billing)
    now, _, _ = prompt_units(body, billing)
    best = 0
    for mark in marks:
        end = mark + 1
        if [u for u, _ in now[:end]] == [u for u, _ in before[:end]]:
            best = max(best, sum(size for _, size in before[:end]))
    return best


@dataclass
class Turn:
    mode: str
    turn: int
    ttft_s: float | None = None  # sending the turn -> its first token
    last_token_s: float | None = None  # -> its last token
    done_s: float | None = None  # -> the answer complete (resumed: the process gone)
    requests: int = 0  # /v1/messages requests the CLI sent for this turn
    body_bytes: int = 0  # the last of them
    messages: int = 0
    blocks: int = 0
    roles: str = ""
    breakpoints: str = ""
    prompt_tok: int = 0  # characters / 4 of the whole prompt
    reused_tok: int = 0  # of those, what the previous request's cache could serve
    reused_tok_as_sent: int = 0  # the same with the billing line as sent
    billing: str = ""
    session_bytes: int = 0  # session files under HOME after the turn
    answer: str = ""


def describe(turn: Turn, body: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Fill ``turn``'s request figures from the last request it caused."""
    units, places, _ = prompt_units(body)
    messages = body.get("messages") or []
    turn.body_bytes = len(json.dumps(body, ensure_ascii=False).encode())
    turn.messages = len(messages)
    turn.blocks = sum(1 if isinstance(m.get("content"), str) else len(m.get("content") or [])
                      for m in messages)
    turn.roles = ",".join(str(m.get("role"))[0] for m in messages)
    turn.breakpoints = ",".join(places)
    turn.prompt_tok = sum(size for _, size in units) // 4
    turn.reused_tok = reused_chars(previous, body, billing=False) // 4
    turn.reused_tok_as_sent = reused_chars(previous, body, billing=True) // 4
    system = body.get("system") or [{}]
    first = system[0].get("text", "") if isinstance(system, list) else ""
    turn.billing = first.rsplit("cc_version=", 1)[-1].split(";")[0] if BILLING in first else ""


# --- the summary ---------------------------------------------------------------------------


def summary(turns: Sequence[Turn]) -> dict[str, Any]:
    """Totals and medians of one mode's turns."""
    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 3) if known else None

    prompt = sum(t.prompt_tok for t in turns)
    reused = sum(t.reused_tok for t in turns)
    return {"turns": len(turns), "requests": sum(t.requests for t in turns),
            "ttft_median_s": median([t.ttft_s for t in turns]),
            "last_token_median_s": median([t.last_token_s for t in turns]),
            "last_token_total_s": round(sum(t.last_token_s or 0.0 for t in turns), 2),
            "bytes_total": sum(t.body_bytes for t in turns),
            "bytes_last": turns[-1].body_bytes if turns else 0,
            "prompt_tok_total": prompt, "reused_tok_total": reused,
            "reused_tok_as_sent_total": sum(t.reused_tok_as_sent for t in turns),
            "new_tok_total": prompt - reused,
            "reused_share": round(reused / prompt, 3) if prompt else 0.0,
            "billing_lines": len({t.billing for t in turns}),
            "session_bytes_last": turns[-1].session_bytes if turns else 0}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(turns: Sequence[Turn]) -> str:
    """One mode's turns as a Markdown table, with a totals/medians row."""
    head = ("| turn | ttft s | last tok s | reqs | bytes | msgs | blocks | breakpoints "
            "| prompt tok | reused tok | reused, billing as sent |")
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for t in turns:
        rows.append(f"| {t.turn} | {_cell(t.ttft_s)} | {_cell(t.last_token_s)} | "
                    f"{t.requests} | {t.body_bytes} | {t.messages} | {t.blocks} | "
                    f"{t.breakpoints} | {t.prompt_tok} | {t.reused_tok} | "
                    f"{t.reused_tok_as_sent} |")
    s = summary(turns)
    rows.append(f"| total / median | {_cell(s['ttft_median_s'])} | "
                f"{_cell(s['last_token_median_s'])} (sum {s['last_token_total_s']}) | "
                f"{s['requests']} | {s['bytes_total']} | | | | {s['prompt_tok_total']} | "
                f"{s['reused_tok_total']} | {s['reused_tok_as_sent_total']} |")
    return "\n".join(rows)
