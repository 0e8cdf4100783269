"""Tools described in the prompt, compactly, and earlier calls and results written as the
same JSON the sniffer reads back."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from proxy.canonical import (
    BlockStart,
    Collector,
    Message,
    MessageStart,
    Request,
    TextDelta,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
    ToolUsePart,
    Usage,
)
from proxy.dialects.anthropic.request_parse import parse_request
from proxy.filters.tool_sniffer import ToolSniffer
from proxy.prompt_tools.describe import (
    ANSWER_FORMAT,
    argument_names,
    describe_tools,
    one_line,
    tool_line,
    tool_prompt,
    tools_in_prompt,
)
from proxy.prompt_tools.render import calls_text, flatten_tool_parts, results_text

FIXTURE = Path(__file__).parent.parent / "fixtures" / "claude_code" / "main_loop_request.json"
READ = Tool("Read", "Reads a file from the local filesystem. You can access any file.\n\n"
            "Usage: ...", {"type": "object", "properties": {
                "file_path": {"type": "string"}, "offset": {"type": "integer"},
                "limit": {"type": "integer"}}, "required": ["file_path"]})


@pytest.fixture(scope="module")
def claude_code() -> Request:
    return parse_request(json.loads(FIXTURE.read_text()))


def test_claude_codes_tools_fit_in_under_two_kilobytes(claude_code: Request) -> None:
    prompt = tool_prompt(claude_code.tools)
    size = len(prompt.encode())
    schemas = len(orjson.dumps([[t.name, t.description, t.input_schema]
                                for t in claude_code.tools]))
    assert len(claude_code.tools) == 19 and schemas > 70_000
    assert 1000 < size < 2000, size  # measured: 1806 bytes (about 90 a tool, format included)
    for tool in claude_code.tools:
        assert f"\n- {tool.name}(" in prompt
    assert "- Edit(file_path*, old_string*, new_string*, replace_all): " in prompt
    assert prompt.endswith(ANSWER_FORMAT)


def test_one_tool_is_one_line() -> None:
    assert tool_line(READ) == "- Read(file_path*, offset, limit): Reads a file from the local " \
                              "filesystem."
    assert tool_line(Tool("Ping", None, {"type": "object"})) == "- Ping()"
    assert argument_names({"properties": {"a": {}, "b": {}}, "required": ["b", "zz"]}) == [
        ("a", False), ("b", True)]
    assert argument_names({"properties": "bad", "required": "bad"}) == []


@pytest.mark.parametrize(("description", "line"), [
    ("Short.", "Short."),
    ("First sentence. Second sentence.", "First sentence."),
    ("Line one\nline two. More.", "Line one line two."),
    ("A very long first sentence that goes on and on without an end in sight at all",
     "A very long first sentence that goes…"),
    ("Supercalifragilisticexpialidocious-and-then-some-more-letters", "Supercalifragilisticexpialidocious…"),
    ("", ""),
])
def test_descriptions_are_cut_to_their_first_sentence(description: str, line: str) -> None:
    assert one_line(description, 40 if " " in description else 35) == line
    assert one_line("Anything", 0) == ""


@pytest.mark.parametrize(("choice", "parallel", "rule"), [
    (ToolChoice("any"), None, "You must use a tool in this answer."),
    (ToolChoice("tool", "Read"), None, "You must use the tool Read in this answer."),
    (ToolChoice("none"), None, "Do not use any tool in this answer."),
    (None, False, "Use one tool at a time."),
])
def test_tool_choice_becomes_a_rule(choice: ToolChoice | None, parallel: bool | None,
                                    rule: str) -> None:
    assert tool_prompt([READ], choice, parallel).endswith("\n" + rule)
    assert tool_prompt([READ], ToolChoice("auto")).endswith(ANSWER_FORMAT)


def test_describe_tools_appends_to_the_system_prompt_and_empties_tools() -> None:
    request = Request(model="m", messages=(Message("user", (TextPart("hi"),)),),
                      system=("Be brief.",), tools=(READ,), tool_choice=ToolChoice("auto"),
                      parallel_tool_calls=True)
    out = describe_tools(request)
    assert out.system == ("Be brief.", tool_prompt([READ]))
    assert (out.tools, out.tool_choice, out.parallel_tool_calls) == ((), None, None)
    plain = Request(model="m", messages=request.messages)
    assert describe_tools(plain) is plain


CALLS = (ToolUsePart("toolu_1", "Read", {"file_path": "a b.txt", "limit": 3}),
         ToolUsePart("toolu_2", "Bash", {"command": 'echo "{}"'}))


def test_calls_are_written_in_the_answer_format() -> None:
    assert calls_text(CALLS[:1]) == '{"tool":"Read","args":{"file_path":"a b.txt","limit":3}}'
    assert json.loads(calls_text(CALLS)) == {"calls": [
        {"tool": "Read", "args": {"file_path": "a b.txt", "limit": 3}},
        {"tool": "Bash", "args": {"command": 'echo "{}"'}}]}


@pytest.mark.parametrize("calls", [CALLS[:1], CALLS])
def test_the_sniffer_reads_written_calls_back(calls: tuple[ToolUsePart, ...]) -> None:
    sniffer = ToolSniffer(["Read", "Bash"])
    collector = Collector()
    collector.feed(sniffer.feed([MessageStart("m", "m", Usage()), BlockStart(0, "text"),
                                 TextDelta(0, calls_text(calls))]))
    found = [(b.tool_name, b.tool_input) for b in collector.message.blocks]
    assert found == [(c.name, c.input) for c in calls]


def test_results_say_their_tool_and_errors_and_keep_every_result() -> None:
    results = [ToolResultPart("toolu_1", (TextPart("line 1"), TextPart("line 2"))),
               ToolResultPart("toolu_2", (), is_error=True)]
    assert results_text(results, {"toolu_1": "Read", "toolu_2": "Bash"}) == (
        '<tool_results>\n<result tool="Read">\nline 1\nline 2\n</result>\n'
        '<result tool="Bash" error="true">\n(no output)\n</result>\n</tool_results>')
    assert '<result tool="unknown">' in results_text(results[:1], {})


def test_flattening_writes_calls_and_results_as_text_in_place() -> None:
    request = Request(model="m", messages=(
        Message("user", (TextPart("Go."),)),
        Message("assistant", (TextPart("Both at once."), *CALLS)),
        Message("user", (ToolResultPart("toolu_1", (TextPart("A"),)),
                         ToolResultPart("toolu_2", (TextPart("B"),)), TextPart("Thanks."))),
    ))
    out = flatten_tool_parts(request)
    assert out.messages[0] is request.messages[0]
    assert out.messages[1].parts == (TextPart("Both at once."), TextPart(calls_text(CALLS)))
    assert out.messages[2].parts == (
        TextPart(results_text(request.messages[2].parts[:2],  # type: ignore[arg-type]
                              {"toolu_1": "Read", "toolu_2": "Bash"})), TextPart("Thanks."))
    assert not any(isinstance(p, ToolUsePart | ToolResultPart)
                   for m in out.messages for p in m.parts)
    plain = Request(model="m", messages=request.messages[:1])
    assert flatten_tool_parts(plain) is plain


def test_the_whole_rewrite_on_claude_codes_request(claude_code: Request) -> None:
    out = tools_in_prompt(claude_code)
    assert out.tools == () and out.system[-1] == tool_prompt(claude_code.tools)
    assert not any(isinstance(p, ToolUsePart | ToolResultPart)
                   for m in out.messages for p in m.parts)
    texts = "\n".join(p.text for m in out.messages for p in m.parts if isinstance(p, TextPart))
    assert '{"tool":"ToolSearch","args":{"query":"select:WebFetch","max_results":5}}' in texts
    assert '<result tool="Bash">\n42\n</result>' in texts
