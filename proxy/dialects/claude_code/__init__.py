"""The Claude Code CLI as an upstream: its command line and stdin (``request_render``,
``transcript``, ``control``), its stream-json output (``stream_decode``), its failures
(``failures``) and its model names (``models``). Observed behaviour of 2.1.330, recorded
in ``tests/fixtures/claude_code_cli``; research/claude-code.md section 5."""
