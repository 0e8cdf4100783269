"""The bodies backboard's endpoints take and the ids its answers carry (backboard.md 1.2-1.5).

Sans-I/O: what to send and what to read, never how. A backend sends these as JSON with an
``X-API-Key`` header: ``POST /assistants`` (made once per key, found again by name after
a restart), ``POST /assistants/{id}/threads`` with ``{}``, ``POST /threads/{id}/messages``
with the fields bbd2api sends (``memory: off``, so no fact leaks between users through
the shared assistant: the cookbook's pitfall no. 1), and ``GET /models``.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.backboard.models import provider_for
from proxy.errors import UpstreamProtocolError

ASSISTANT_NAME = "llm-dialect-proxy"
# The conversation's own system prompt goes into each thread's first message; the
# assistant's stays neutral so it never contradicts one.
ASSISTANT_PROMPT = "Follow the instructions and the conversation given in each thread."
THREAD_BODY: dict[str, Any] = {}
ASSISTANTS_PAGE = 100
MODELS_QUERY = {"model_type": "llm", "limit": "500"}


def assistant_body(name: str = ASSISTANT_NAME) -> dict[str, Any]:
    """``POST /assistants``."""
    return {"name": name, "system_prompt": ASSISTANT_PROMPT}


def assistants_query(name: str = ASSISTANT_NAME, skip: int = 0) -> dict[str, str]:
    """``GET /assistants``: one page, filtered by name where the server supports it."""
    return {"name": name, "skip": str(skip), "limit": str(ASSISTANTS_PAGE)}


def find_assistant(body: Any, name: str = ASSISTANT_NAME) -> str | None:
    """The id of the assistant called ``name`` in a ``GET /assistants`` answer (a list, or
    an object holding one), the oldest when there are several."""
    items = body.get("assistants") if isinstance(body, dict) else body
    found = [a for a in items if isinstance(a, dict) and a.get("name") == name
             and isinstance(a.get("assistant_id"), str)] if isinstance(items, list) else []
    found.sort(key=lambda a: str(a.get("created_at") or ""))
    return found[0]["assistant_id"] if found else None


def assistant_id(body: Any) -> str:
    """The id in a ``POST /assistants`` answer."""
    return _id(body, "assistant_id")


def thread_id(body: Any) -> str:
    """The id in a ``POST /assistants/{id}/threads`` answer."""
    return _id(body, "thread_id")


def message_fields(content: str, model: str, *, stream: bool) -> dict[str, Any]:
    """``POST /threads/{id}/messages``, for a JSON body."""
    provider, name = provider_for(model)
    return {"content": content, "llm_provider": provider, "model_name": name,
            "stream": stream, "memory": "off"}


def _id(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise UpstreamProtocolError(f"backboard's answer carries no {name}.")
    return value
