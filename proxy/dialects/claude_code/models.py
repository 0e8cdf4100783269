"""Model names a client may ask the Claude Code CLI for: what ``--model`` (and the
``set_model`` control request) takes for each, and the list ``GET /v1/models`` shows.

Sans-I/O. The CLI takes its own aliases (``opus``, ``sonnet``, ``haiku``, ``fable``, each
the newest of its family) and full ids. An alias is switched to at once; a full id the
CLI does not know as an alias's target costs a validation call to the API first (a
``max_tokens: 1`` request, measured with 2.1.330), so an id that names what an alias
resolves to is sent as the alias. Names in the old style (``claude-3-5-sonnet-…``,
``claude-3.5-sonnet``) name models long retired: they mean the family's newest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FAMILIES = ("opus", "sonnet", "haiku", "fable")
# What 2.1.330's aliases resolve to (its initialize answer's ``models``); a running CLI's
# own answer replaces this table (``resolved_ids``).
RESOLVED_2_1_330: Mapping[str, str] = {
    "claude-opus-5-5": "opus", "claude-sonnet-5-5": "sonnet",
    "claude-haiku-5-5": "haiku", "claude-fable-5-2": "fable"}
DEFAULT_LIST: tuple[tuple[str, str], ...] = (
    ("opus", "Claude Opus (newest, via Claude Code)"),
    ("sonnet", "Claude Sonnet (newest, via Claude Code)"),
    ("haiku", "Claude Haiku (newest, via Claude Code)"))

_FAMILY = "|".join(FAMILIES)
_BARE = re.compile(rf"claude-({_FAMILY})(?:-latest)?")
# claude-sonnet-4-5, claude-haiku-4-5-20251001
_NEW_STYLE = re.compile(rf"claude-({_FAMILY})-\d+(?:-\d+)?(?:-\d{{8}})?")
# claude-3-5-sonnet-20241022, claude-3-opus-latest
_OLD_STYLE = re.compile(rf"claude-\d+(?:-\d+)?-({_FAMILY})(?:-\d{{8}}|-latest)?")


def cli_model(name: str, resolved: Mapping[str, str] = RESOLVED_2_1_330) -> str | None:
    """The CLI's name for a client's model name, or None when it names no Claude model.
    ``resolved`` maps full ids to the alias that resolves to them."""
    wanted = name.strip().lower().removeprefix("anthropic/").replace(".", "-")
    if wanted in FAMILIES:
        return wanted
    if (bare := _BARE.fullmatch(wanted)) is not None:
        return bare.group(1)
    if _NEW_STYLE.fullmatch(wanted):
        return resolved.get(wanted, wanted)
    if (old := _OLD_STYLE.fullmatch(wanted)) is not None:
        return old.group(1)
    return None


def resolved_ids(cli_models: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Full id -> alias, from the ``models`` of a CLI's initialize answer."""
    out: dict[str, str] = {}
    for entry in cli_models:
        value, target = entry.get("value"), entry.get("resolvedModel")
        if isinstance(value, str) and value in FAMILIES and isinstance(target, str):
            out[target] = value
    return out


def listed_models(cli_models: Iterable[Mapping[str, Any]] | None = None
                  ) -> list[tuple[str, str]]:
    """(id, display name) pairs for ``GET /v1/models``: the aliases, then the full ids they
    resolve to, from a CLI's initialize answer when there is one."""
    if cli_models is None:
        return list(DEFAULT_LIST)
    aliases: list[tuple[str, str]] = []
    ids: list[tuple[str, str]] = []
    for entry in cli_models:
        value, target = entry.get("value"), entry.get("resolvedModel")
        if not isinstance(value, str) or value not in FAMILIES:
            continue  # "default" names no model of its own
        name = str(entry.get("displayName") or value)
        aliases.append((value, f"{name} (newest, via Claude Code)"))
        if isinstance(target, str) and target.startswith("claude-"):
            ids.append((target, f"{name} ({target}, via Claude Code)"))
    return aliases + ids if aliases else list(DEFAULT_LIST)
