"""Conversation keys: the key stored after a reply is the key the client's next turn looks
up, in both client dialects; what does not matter does not change it, what matters does;
new turns and replays carry everything the thread has not seen."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from proxy.canonical import (
    Block,
    CollectedMessage,
    ImagePart,
    Message,
    Request,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.anthropic.request_parse import parse_request as parse_anthropic
from proxy.dialects.backboard.conversation import (
    Turn,
    plan_turn,
    reply_parts,
    stable_text,
    system_text,
)
from proxy.dialects.openai.request_parse import parse_request as parse_openai
from proxy.errors import InvalidRequest

FIXTURE = Path(__file__).parent.parent.parent / "fixtures" / "claude_code" / "main_loop_request.json"
BILLING = "x-anthropic-billing-header: cc_version=2.1.330.440; cc_entrypoint=sdk-cli;"
SYSTEM = "You are a careful assistant."


def user(*parts: Any) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def assistant(*parts: Any) -> Message:
    return Message("assistant", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def request(*messages: Message, system: tuple[str, ...] = (SYSTEM,)) -> Request:
    return Request(model="m", messages=messages, system=system)


# ------------------------------------------------------------------ the keys chain


def test_a_first_turn_has_no_key_to_look_up_and_replays_the_system_prompt() -> None:
    turn = plan_turn(request(user("Hello")))
    assert turn.lookup_key is None
    assert turn.new_turn == "Hello"
    assert turn.replay == f"<system>\n{SYSTEM}\n</system>\n\nHello"
    assert turn.result_ids == ()


def test_the_stored_key_is_the_next_turns_lookup_key_three_turns_on() -> None:
    messages: list[Message] = [user("My name is Ada.")]
    stored: list[str] = []
    looked_up: list[str | None] = []
    for n, reply in enumerate(["Hello Ada!", "Paris is lovely.", "Your name is Ada."]):
        turn = plan_turn(request(*messages))
        looked_up.append(turn.lookup_key)
        stored.append(turn.store_key([TextPart(reply)]))
        messages += [assistant(reply), user(f"turn {n + 2}")]
    assert looked_up == [None, stored[0], stored[1]]
    assert len(set(stored)) == 3


def test_both_client_dialects_echo_a_sniffed_tool_call_to_the_same_key() -> None:
    """The reply as the sniffer made it (lead text, two calls), echoed back by an Anthropic
    client and by an OpenAI client, then the results: both look up the stored key."""
    reply = (TextPart("Let me check."),
             ToolUsePart("toolu_A1", "Read", {"file_path": "a", "limit": 10}),
             ToolUsePart("toolu_B2", "Bash", {"command": "ls"}))
    anthropic_first = {"model": "m", "max_tokens": 100, "system": SYSTEM,
                       "messages": [{"role": "user", "content": "Look around."}]}
    openai_first = {"model": "m", "messages": [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": "Look around."}]}
    stored = plan_turn(parse_anthropic(anthropic_first)).store_key(reply)
    assert plan_turn(parse_openai(openai_first)).store_key(reply) == stored
    anthropic_next = dict(anthropic_first, messages=[
        *anthropic_first["messages"],
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_A1", "name": "Read",
             "input": {"limit": 10, "file_path": "a"}},
            {"type": "tool_use", "id": "toolu_B2", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A1", "content": "file a"},
            {"type": "tool_result", "tool_use_id": "toolu_B2", "is_error": True,
             "content": [{"type": "text", "text": "ls: denied"}]}]}])
    openai_next = dict(openai_first, messages=[
        *openai_first["messages"],
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_A1", "type": "function",
             "function": {"name": "Read", "arguments": '{"file_path":"a","limit":10}'}},
            {"id": "toolu_B2", "type": "function",
             "function": {"name": "Bash", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_A1", "content": "file a"},
        {"role": "tool", "tool_call_id": "toolu_B2", "content": "ls: denied"}])
    from_anthropic = plan_turn(parse_anthropic(anthropic_next))
    from_openai = plan_turn(parse_openai(openai_next))
    assert from_anthropic.lookup_key == from_openai.lookup_key == stored
    assert from_anthropic.result_ids == from_openai.result_ids == ("toolu_A1", "toolu_B2")


# ------------------------------------------------------------------ what the key ignores

BASE = [user("<system-reminder>\nToday is Monday.\n</system-reminder>\n", "Fix the bug."),
        assistant(ThinkingPart("hmm", "sig"), "Done, the bug is fixed."),
        user("Thanks. Now the docs.")]


@pytest.mark.parametrize("variant", [
    # dynamic spans: another reminder, the billing line
    [user("<system-reminder>\nToday is Tuesday, much later.\n</system-reminder>\n",
          "Fix the bug."), *BASE[1:]],
    # whitespace, and the same text split otherwise into parts and messages
    [user("Fix   the\nbug. "), *BASE[1:]],
    [user("Fix the "), user("bug."), *BASE[1:]],
    # thinking dropped by the client
    [BASE[0], assistant("Done, the bug is fixed."), BASE[2]],
    # a mid-conversation system message, moved or changed (Claude Code's environment)
    [BASE[0], Message("system", (TextPart("# Environment\nToday's date: 2026-03-15"),)),
     *BASE[1:]],
    [Message("system", (TextPart("env"),)), *BASE],
])
def test_what_does_not_matter_leaves_the_key_alone(variant: list[Message]) -> None:
    base = plan_turn(request(*BASE, system=(BILLING, SYSTEM)))
    assert base.lookup_key is not None
    assert plan_turn(request(*variant, system=(SYSTEM,))).lookup_key == base.lookup_key
    reminded = (f"{SYSTEM}\n<system-reminder>changing</system-reminder>",)
    assert plan_turn(request(*variant, system=reminded)).lookup_key == base.lookup_key


@pytest.mark.parametrize("change", [
    {"system": ("Another system prompt.",)},
    {"messages": (user("Fix the other bug."), *BASE[1:])},
    {"messages": (BASE[0], assistant("Done, the bug is NOT fixed."), BASE[2])},
    {"messages": (user("First."), assistant("One."), *BASE)},
])
def test_what_matters_changes_the_key(change: dict[str, Any]) -> None:
    base = request(*BASE)
    assert plan_turn(replace(base, **change)).lookup_key != plan_turn(base).lookup_key


def test_tool_ids_and_results_are_part_of_the_key() -> None:
    def turn(call_id: str, result: str, error: bool = False) -> Turn:
        return plan_turn(request(
            user("Go"), assistant(ToolUsePart(call_id, "Bash", {"command": "ls"})),
            user(ToolResultPart(call_id, (TextPart(result),), error)),
            assistant("Listed."), user("Next")))
    keys = {turn("toolu_1", "a").lookup_key, turn("toolu_2", "a").lookup_key,
            turn("toolu_1", "b").lookup_key, turn("toolu_1", "a", True).lookup_key}
    assert len(keys) == 4


def test_the_input_of_a_call_is_keyed_whatever_its_key_order() -> None:
    one = plan_turn(request(user("x"), assistant(ToolUsePart("t", "Read", {"a": 1, "b": 2})),
                            user("y")))
    two = plan_turn(request(user("x"), assistant(ToolUsePart("t", "Read", {"b": 2, "a": 1})),
                            user("y")))
    assert one.lookup_key == two.lookup_key


# ------------------------------------------------------------------ what is sent


def test_tool_results_of_parallel_calls_go_as_one_message_with_errors_said() -> None:
    turn = plan_turn(request(
        user("Count and list."),
        assistant("On it.", ToolUsePart("toolu_1", "Bash", {"command": "wc -l"}),
                  ToolUsePart("toolu_2", "Glob", {"pattern": "*"})),
        user(ToolResultPart("toolu_1", (TextPart("42"),)),
             ToolResultPart("toolu_2", (TextPart("no match"),), is_error=True),
             "Also, be brief.")))
    assert turn.result_ids == ("toolu_1", "toolu_2")
    assert turn.new_turn == ('<tool_results>\n<result tool="Bash">\n42\n</result>\n'
                             '<result tool="Glob" error="true">\nno match\n</result>\n'
                             "</tool_results>\n\nAlso, be brief.")


def test_a_replay_carries_the_system_prompt_every_turn_and_the_new_one_last() -> None:
    turn = plan_turn(request(
        user("<system-reminder>r</system-reminder>", "Count files."),
        assistant(ThinkingPart("secret thoughts"), "Counting.",
                  ToolUsePart("toolu_1", "Bash", {"command": "ls | wc -l"})),
        user(ToolResultPart("toolu_1", (TextPart("7"), ImagePart(data="iVBOR")))),
        assistant("There are 7 files."),
        Message("system", (TextPart("Env: linux"),)),
        user("And how many dirs?"), system=(BILLING, SYSTEM, "Be terse.")))
    replay = turn.replay
    assert replay.startswith(f"<system>\n{SYSTEM}\n\nBe terse.\n</system>\n\n")
    assert BILLING not in replay and "secret thoughts" not in replay
    order = ["<system-reminder>r</system-reminder>", "Count files.", "Counting.",
             '{"tool":"Bash","args":{"command":"ls | wc -l"}}', '<result tool="Bash">', "7",
             "[image]", "There are 7 files.", "<system>\nEnv: linux\n</system>",
             "And how many dirs?"]
    positions = [replay.index(piece) for piece in order]
    assert positions == sorted(positions)
    # the system message after the last assistant turn is part of the new turn
    assert turn.new_turn == "<system>\nEnv: linux\n</system>\n\nAnd how many dirs?"
    assert replay.endswith("\n\n" + turn.new_turn)
    assert "<conversation_so_far>" in replay and "<assistant>\nThere are 7 files." in replay


def test_system_messages_in_the_new_turn_are_sent_as_such() -> None:
    turn = plan_turn(request(user("Hi"), Message("system", (TextPart("Be formal."),))))
    assert turn.new_turn == "Hi\n\n<system>\nBe formal.\n</system>"


def test_a_prefill_is_asked_for_and_keyed_with_the_reply() -> None:
    turn = plan_turn(request(user("Write a haiku."), assistant("Autumn")))
    assert turn.lookup_key is None and "Autumn" in turn.new_turn
    stored = turn.store_key([TextPart(" leaves fall slowly")])
    later = plan_turn(request(user("Write a haiku."), assistant("Autumn leaves fall slowly"),
                              user("Another.")))
    assert later.lookup_key == stored


def test_a_turn_with_nothing_new_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        plan_turn(request())
    with pytest.raises(InvalidRequest):
        plan_turn(request(user("x"), assistant("y"), user(ThinkingPart("z"))))


def test_reply_parts_are_what_a_client_sends_back() -> None:
    message = CollectedMessage(blocks=[
        Block("thinking", text="hmm"), Block("text", text="Lead."), Block("text", text=""),
        Block("tool_use", tool_id="toolu_1", tool_name="Read", tool_input={"file_path": "a"})])
    assert reply_parts(message) == (TextPart("Lead."),
                                    ToolUsePart("toolu_1", "Read", {"file_path": "a"}))


def test_text_helpers() -> None:
    assert stable_text(f"{BILLING}\n a <system-reminder>x\ny</system-reminder> b\n") == "ab"
    assert system_text((BILLING, "  One.  ", "", "Two.")) == "One.\n\nTwo."


def test_the_claude_code_request_plans_a_tool_result_turn() -> None:
    body = json.loads(FIXTURE.read_text())
    turn = plan_turn(parse_anthropic(body))
    assert turn.lookup_key is not None
    assert turn.result_ids == ("toolu_01D2gh9AnW0pQ5sT8uV2yZ4b",)
    assert turn.new_turn.startswith('<tool_results>\n<result tool="Read">')
    body["system"][0]["text"] = BILLING.replace("440", "9ab")  # another conversation's line
    body["messages"][1]["content"][0]["text"] += "\n - Today's date: 2026-03-15"
    assert plan_turn(parse_anthropic(body)).lookup_key == turn.lookup_key
