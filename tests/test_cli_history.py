"""scripts/cli_history_report.py: the figures of the flatten-or-resume measurement, on
canned request bodies shaped as the Claude Code CLI 2.1.330 sends them (a resumed session's
history as messages, a fresh process's as one flattened user turn)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from cli_history_report import Turn, describe, prompt_units, reused_chars, summary, table  # noqa: E402

CACHE = {"type": "ephemeral"}
ENV = "# Environment\nPrimary working directory: /tmp/work"


def system(suffix: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.330.{suffix};"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": CACHE},
            {"type": "text", "text": "Be brief.", "cache_control": CACHE}]


def text(value: str, cached: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": value, **({"cache_control": CACHE} if cached else {})}


def resumed(turns: int) -> dict[str, Any]:
    """Turn 1: [user, env]; later: the env message a string, the breakpoint rolling on
    the last user block."""
    if turns == 1:
        return {"system": system("aaa"), "tools": [], "messages": [
            {"role": "user", "content": [text("q1")]},
            {"role": "system", "content": [text(ENV, cached=True)]}]}
    messages: list[dict[str, Any]] = [{"role": "user", "content": [text("q1")]},
                                      {"role": "system", "content": ENV}]
    for n in range(2, turns + 1):
        messages += [{"role": "assistant", "content": [text(f"a{n - 1}")]},
                     {"role": "user", "content": [text(f"q{n}", cached=n == turns)]}]
    return {"system": system("aaa"), "tools": [], "messages": messages}


def flattened(turns: int, suffix: str) -> dict[str, Any]:
    history = "".join(f"<user>q{n}</user><assistant>a{n}</assistant>" for n in range(1, turns))
    content = ([text(history)] if history else []) + [text(f"q{turns}")]
    return {"system": system(suffix), "tools": [], "messages": [
        {"role": "user", "content": content},
        {"role": "system", "content": [text(ENV, cached=True)]}]}


def test_breakpoints_are_placed_by_block() -> None:
    _, places, _ = prompt_units(resumed(3))
    assert places == ["s1", "s2", "m5.0"]
    _, places, _ = prompt_units(flattened(3, "bbb"))
    assert places == ["s1", "s2", "m1.0"]


def test_a_resumed_session_reuses_all_the_previous_request() -> None:
    """A string content equals its one text block: the env message still matches."""
    first, second = resumed(1), resumed(2)
    whole = sum(size for _, size in prompt_units(first)[0])
    assert reused_chars(first, second, billing=True) == whole
    third = resumed(3)
    assert reused_chars(second, third, billing=True) == sum(
        size for _, size in prompt_units(second)[0])


def test_a_flattened_history_reuses_only_the_system_prompt() -> None:
    system_chars = len("You are a Claude agent.") + len(system("bbb")[0]["text"]) + len(
        "Be brief.")
    assert reused_chars(flattened(2, "bbb"), flattened(3, "bbb"), billing=True) == system_chars
    # a new billing suffix breaks even that, unless the billing line is ignored
    assert reused_chars(flattened(1, "aaa"), flattened(2, "bbb"), billing=True) == 0
    assert reused_chars(flattened(1, "aaa"), flattened(2, "bbb"), billing=False) == system_chars
    assert reused_chars(None, flattened(1, "aaa"), billing=False) == 0


def test_describe_summary_and_table() -> None:
    turns = []
    previous = None
    for n, (ttft, last) in enumerate([(1.0, 1.5), (0.5, 0.75), (2.0, 2.5)], start=1):
        turn = Turn("resumed", n, ttft_s=ttft, last_token_s=last, requests=1)
        body = resumed(n)
        describe(turn, body, previous)
        previous = body
        turns.append(turn)
    assert [t.messages for t in turns] == [2, 4, 6]
    assert [t.roles for t in turns] == ["u,s", "u,s,a,u", "u,s,a,u,a,u"]
    assert turns[0].billing == "2.1.330.aaa" and turns[0].reused_tok == 0
    assert turns[2].reused_tok == turns[1].prompt_tok
    figures = summary(turns)
    assert figures["ttft_median_s"] == 1.0 and figures["last_token_median_s"] == 1.5
    assert figures["last_token_total_s"] == 4.75 and figures["requests"] == 3
    assert figures["billing_lines"] == 1
    assert figures["new_tok_total"] == figures["prompt_tok_total"] - figures["reused_tok_total"]
    rows = table(turns).splitlines()
    assert len(rows) == 2 + 3 + 1 and rows[-1].startswith("| total / median | 1.00 | 1.50")


def test_the_proxys_turn_is_cut_at_each_earlier_turn_and_marked() -> None:
    from proxy.canonical import Message, TextPart
    from proxy.dialects.claude_code.transcript import user_content

    def conversation(turns: int) -> list[Message]:
        out = []
        for n in range(1, turns + 1):
            out.append(Message("user", (TextPart(f"question {n}\nwith <b>two</b> lines"),)))
            if n < turns:
                out.append(Message("assistant", (TextPart(f"answer {n}"),)))
        return out

    assert "cache_control" not in str(user_content(conversation(1)))
    for turns in (2, 3, 5):
        marked = user_content(conversation(turns))
        assert len(marked) == 2 * (turns - 1) + 1  # each earlier message (the first with
        # the opening), then the newest
        assert [i for i, b in enumerate(marked) if "cache_control" in b] == [len(marked) - 2]
        nxt = user_content(conversation(turns + 1))
        strip = [{"type": "text", "text": b["text"]} for b in marked[:-1]]
        assert [{"type": "text", "text": b["text"]} for b in nxt[:len(strip)]] == strip
