"""The Claude Code CLI's control channel (stream-json stdin/stdout): the lines the proxy
writes besides user messages, and how to read the CLI's answers to them.

Sans-I/O. Measured with 2.1.330, offline:

* The CLI does its start-up work (about 0.3-1.3 s here) before it reads stdin, and a
  ``mcp_status`` request is answered as soon as it is done, without fixing anything about
  the session: that is the pool's readiness probe.
* The *first* ``initialize`` fixes the session's settings: its ``systemPrompt`` replaces the
  ``--system-prompt`` flag, and a second ``initialize`` is acknowledged but changes nothing.
  So the pool never sends it; each request sends its own, with its system prompt.
* ``set_model`` switches model before the first turn: at once for an alias; a full id is
  validated with an API call first (and on failure the CLI keeps its old model).
* Lines are pipelined: initialize, set_model and the user message may go in one write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

INIT_ID = "proxy_init"
MODEL_ID = "proxy_model"
PROBE_ID = "proxy_ready"
PROBE = orjson.dumps({"type": "control_request", "request_id": PROBE_ID,
                      "request": {"subtype": "mcp_status"}}) + b"\n"


def initialize(system: Sequence[str] | None = None) -> bytes:
    """The initialize request; ``system`` (None: keep the command line's prompt) becomes
    the session's system prompt, one system block per string."""
    request: dict[str, Any] = {"subtype": "initialize", "hooks": None}
    if system is not None:
        request["systemPrompt"] = list(system)
    return _control(INIT_ID, request)


def set_model(model: str) -> bytes:
    return _control(MODEL_ID, {"subtype": "set_model", "model": model})


def user_message(content: list[dict[str, Any]]) -> bytes:
    """One user turn: the stream-json line ``claude -p --input-format stream-json`` takes."""
    return orjson.dumps({"type": "user", "session_id": "",
                         "message": {"role": "user", "content": content},
                         "parent_tool_use_id": None}) + b"\n"


def answer_to(line: Mapping[str, Any], request_id: str) -> Mapping[str, Any] | None:
    """The ``response`` of a control_response line to ``request_id``, else None."""
    if line.get("type") != "control_response":
        return None
    response = line.get("response")
    if not isinstance(response, Mapping) or response.get("request_id") != request_id:
        return None
    return response


def logged_in(account: Mapping[str, Any]) -> bool | None:
    """Whether an initialize answer's ``account`` shows credentials the CLI will use.

    Observed: an API key gives ``apiKeySource``; ``CLAUDE_CODE_OAUTH_TOKEN`` gives
    ``tokenSource: CLAUDE_CODE_OAUTH_TOKEN``; a stored ``claude login`` gives
    ``subscriptionType`` (and no tokenSource); nothing at all gives exactly
    ``{"tokenSource": "none", "apiProvider": "firstParty"}``. Another provider (Bedrock,
    Vertex) brings its own credentials, which the CLI does not describe: None, unknown."""
    if account.get("apiProvider", "firstParty") != "firstParty":
        return None
    if account.get("apiKeySource") or account.get("subscriptionType"):
        return True
    source = account.get("tokenSource")
    return bool(source) and source != "none"


def _control(request_id: str, request: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "control_request", "request_id": request_id,
                         "request": request}) + b"\n"
