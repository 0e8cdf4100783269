"""canonical Request -> the CLI's command line, environment and stdin; the flattened
history is checked against what the real CLI sent upstream from it (recorded)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Request,
    TextPart,
    ThinkingPart,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.claude_code import control
from proxy.dialects.claude_code.request_render import (
    cli_arguments,
    cli_environment,
    render_input,
)
from proxy.dialects.claude_code.transcript import CONTINUE, OPENING, user_content
from proxy.errors import InvalidRequest
from tests.support import FIXTURES

PNG = "iVBORw0KGgo="


def user(*parts: Any) -> Message:
    return Message("user", tuple(parts))


def assistant(*parts: Any) -> Message:
    return Message("assistant", tuple(parts))


def stdin_lines(request: Request, model: str = "sonnet") -> list[dict[str, Any]]:
    rendered = render_input(request, model=model)
    assert rendered.stdin.endswith(b"\n")
    return [json.loads(line) for line in rendered.stdin.splitlines()]


# -------------------------------------------------------------------- command line


def test_the_command_line_has_every_option_the_measurements_call_for() -> None:
    args = cli_arguments()
    assert args[0] == "-p"
    pairs = dict(zip(args[1::2], args[2::2], strict=False))
    for flag, value in {"--input-format": "stream-json", "--output-format": "stream-json",
                        "--setting-sources": "", "--permission-prompts": "none",
                        "--tools": "", "--system-prompt": ""}.items():
        assert args[args.index(flag) + 1] == value, flag
    for flag in ("--verbose", "--include-partial-messages", "--no-session-persistence",
                 "--restricted"):
        assert flag in args
    assert "--model" not in args and pairs


def test_tools_and_a_start_up_model_when_asked() -> None:
    args = cli_arguments(tools=["Read", "Grep"], model="haiku")
    assert args[args.index("--tools") + 1] == "Read,Grep"
    assert args[args.index("--model") + 1] == "haiku"


def test_the_environment_is_the_proxys_with_defaults_and_without_the_nesting_mark() -> None:
    base = {"PATH": "/bin", "HOME": "/home/u", "ANTHROPIC_BASE_URL": "http://x",
            "CLAUDE_CODE_OAUTH_TOKEN": "tok", "CLAUDECODE": "1", "DISABLE_AUTOUPDATER": "0"}
    env = cli_environment(base)
    assert "CLAUDECODE" not in env
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == "tok" and env["HOME"] == "/home/u"
    assert env["DISABLE_AUTOUPDATER"] == "0"  # the proxy's own setting wins
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert base["CLAUDECODE"] == "1"  # the caller's mapping is untouched


# -------------------------------------------------------------------------- stdin


def test_stdin_is_initialize_with_the_system_prompt_then_set_model_then_the_turn() -> None:
    request = Request(model="m", system=("Be terse.", "Use French."),
                      messages=(user(TextPart("Bonjour")),))
    init, model, turn = stdin_lines(request, "claude-sonnet-4-5")
    assert init == {"type": "control_request", "request_id": control.INIT_ID,
                    "request": {"subtype": "initialize", "hooks": None,
                                "systemPrompt": ["Be terse.", "Use French."]}}
    assert model == {"type": "control_request", "request_id": control.MODEL_ID,
                     "request": {"subtype": "set_model", "model": "claude-sonnet-4-5"}}
    assert turn == {"type": "user", "session_id": "", "parent_tool_use_id": None,
                    "message": {"role": "user", "content": [{"type": "text",
                                                             "text": "Bonjour"}]}}


def test_without_a_system_prompt_the_command_lines_empty_one_stays() -> None:
    init, _, _ = stdin_lines(Request(model="m", messages=(user(TextPart("hi")),)))
    assert "systemPrompt" not in init["request"]


def test_fields_the_cli_cannot_take_are_named() -> None:
    request = Request(model="m", messages=(user(TextPart("hi")),), temperature=0.2,
                      top_p=0.9, stop_sequences=("END",), max_tokens=50,
                      tool_choice=ToolChoice("auto"), json_object=True,
                      reasoning_effort="high")
    assert render_input(request, model="sonnet").ignored == (
        "temperature", "top_p", "stop_sequences", "max_tokens", "tool_choice",
        "reasoning_effort", "response_format")
    plain = Request(model="m", messages=(user(TextPart("hi")),))
    assert render_input(plain, model="sonnet").ignored == ()


# --------------------------------------------------------------------- flattening


def test_a_lone_user_message_goes_as_its_own_blocks() -> None:
    content = user_content([user(TextPart("Look:"), ImagePart("image/png", PNG),
                                 TextPart("What is it?"))])
    assert content == [
        {"type": "text", "text": "Look:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}},
        {"type": "text", "text": "What is it?"}]


def test_history_becomes_a_transcript_with_roles_tools_and_images_in_place() -> None:
    content = user_content([
        Message("system", (TextPart("Mid-conversation note."),)),
        user(TextPart("Weather?"), ImagePart(url="https://example.com/sky.png")),
        assistant(ThinkingPart("hmm", "sig"), TextPart("Checking."),
                  ToolUsePart("toolu_1", "get_weather", {"city": "Paris"})),
        user(ToolResultPart("toolu_1", (TextPart("Sunny"),)),
             ToolResultPart("toolu_2", (TextPart("boom"),), is_error=True)),
        assistant(TextPart("Sunny.")),
        user(TextPart("Thanks! And tomorrow?"))])
    assert content[0] == {"type": "text", "text": (
        OPENING + "<system>\nMid-conversation note.\n</system>\n\n")}
    assert content[1] == {"type": "text", "text": "<user>\nWeather?\n"}
    assert content[2] == {"type": "image", "source": {"type": "url",
                                                      "url": "https://example.com/sky.png"}}
    assert content[3:7] == [
        {"type": "text", "text": "\n</user>\n\n"},
        {"type": "text", "text": (
            "<assistant>\nChecking.\n"
            '<tool_use id="toolu_1" name="get_weather">\n{"city":"Paris"}\n</tool_use>\n'
            "</assistant>\n\n")},
        {"type": "text", "text": (
            '<user>\n<tool_result tool_use_id="toolu_1">\nSunny\n</tool_result>\n'
            '<tool_result tool_use_id="toolu_2" is_error="true">\nboom\n</tool_result>\n'
            "</user>\n\n")},
        # One block a turn, the last of the history with a cache breakpoint: the prompt
        # cache serves the unchanged history next turn.
        {"type": "text", "text": "<assistant>\nSunny.\n</assistant>\n\n",
         "cache_control": {"type": "ephemeral"}}]
    assert content[7:] == [{"type": "text", "text": "Thanks! And tomorrow?"}]
    assert sum("cache_control" in block for block in content) == 1
    assert "hmm" not in json.dumps(content)  # earlier thinking is left out


def test_tool_results_in_the_newest_message_are_text_and_images_in_them_stay_blocks() -> None:
    content = user_content([
        user(TextPart("Read it")),
        assistant(ToolUsePart("toolu_9", "Read", {"path": "a.png"})),
        user(ToolResultPart("toolu_9", (TextPart("the image:"), ImagePart("image/png", PNG))))])
    assert content[-3:] == [
        {"type": "text", "text": '<tool_result tool_use_id="toolu_9">\nthe image:\n'},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "\n</tool_result>"}]


def test_an_assistant_last_turn_is_continued() -> None:
    content = user_content([user(TextPart("Write a haiku")), assistant(TextPart("Autumn"))])
    assert [block["text"] for block in content] == [
        OPENING + "<user>\nWrite a haiku\n</user>\n\n",
        "<assistant>\nAutumn\n</assistant>\n\n", CONTINUE]
    assert content[1]["cache_control"] == {"type": "ephemeral"}


def test_documents_pass_as_document_blocks() -> None:
    content = user_content([user(DocumentPart("application/pdf", data="JVBERi0="),
                                 DocumentPart(text="plain words", title="notes"),
                                 DocumentPart(url="https://example.com/a.pdf"))])
    assert content == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain words"}, "title": "notes"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]


@pytest.mark.parametrize("text", ["/cost", "/logout now"])
def test_the_last_text_never_starts_a_slash_command(text: str) -> None:
    assert user_content([user(TextPart(text))]) == [{"type": "text", "text": "\n" + text}]
    content = user_content([user(TextPart(text), ImagePart("image/png", PNG))])
    assert content[0]["text"] == "\n" + text  # the last *text* block is the one checked
    assert user_content([user(TextPart(text), TextPart("ok"))])[0]["text"] == text


def test_nothing_to_send_is_a_client_error() -> None:
    with pytest.raises(InvalidRequest):
        user_content([user(ThinkingPart("only thinking"))])
    with pytest.raises(InvalidRequest):
        user_content([])


# ------------------------------------------------- against the real CLI (recorded)


def test_the_real_cli_sent_our_blocks_and_system_prompt_upstream_unchanged() -> None:
    """history_image.jsonl was recorded by feeding the CLI record.py's HISTORY request
    rendered by render_input; the CLI passed the blocks on as they were."""
    from tests.fixtures.claude_code_cli.record import HISTORY

    (body,) = json.loads((FIXTURES / "claude_code_cli/history_image.requests.json").read_text())
    assert body["messages"][0] == {"role": "user", "content": user_content(HISTORY.messages)}
    assert body["system"][-1]["text"] == "\n\n".join(HISTORY.system)
    assert body["model"] == "claude-sonnet-5-5"  # set_model "sonnet", pipelined
    # Our breakpoint reached the API, and with the CLI's own three it is the API's four.
    assert json.dumps(body).count('"cache_control"') == 4


def test_the_real_cli_sent_a_guarded_slash_to_the_model() -> None:
    (body,) = json.loads((FIXTURES / "claude_code_cli/slash_guard.requests.json").read_text())
    assert body["messages"][0]["content"] == [{"type": "text", "text": "\n/cost"}]
    assert len(body["system"]) == 2  # no system prompt: not Claude Code's own big one
