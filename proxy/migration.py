"""Settings of the five projects this one grows from, read as ours: the one table of them.

A user switching from bbd2api, a2o, codingplanproxy, the Go claude-proxy or claudebridge
keeps their start command and ``.env``. Each setting of theirs is either mapped to ours, and
the start-up log says to what, or it stops the start with a message naming the line to
change and what to use instead. None is ignored without a word (docs/migrating.md).

``ENTRIES`` is the table. Their environment variables are read from the environment and
``.env`` at the same level as ours would be; our own name, given at the same or a higher
level, wins, and the log says so. Their flags (a2o's ``--timeout`` and ``--debug``,
claudebridge's ``-w``) are flags of ours; lower-case names are keys of the providers file.
bbd2api's ``THREAD_TTL``, claudebridge's ``POOL_SIZE`` and ``CLAUDE_TIMEOUT``, and the Go
proxy's ``TAVILY_API_KEY``, ``tavily_key`` and ``tavily_url`` are settings of ours by those
very names. A part not built yet would get ``NotYet`` entries (none today), turned into
``Mapped`` ones when it lands. ``CLIENT_ALIASES`` are claudebridge's client
variables, read by ``proxy.client``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Values = dict[str, str]  # our variable names -> raw values, as .env would hold them
Note = tuple[int, str]  # (logging level, text) for the start-up log
LEVELS = ("flag", "environment", ".env")  # highest first
ANTHROPIC_API = "https://api.anthropic.com"  # codingplanproxy's default BASE_URL
GO_CONFIG = "config.json"  # the Go claude-proxy's default CONFIG_PATH
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Mapped:
    """A setting of theirs we honour: ``to`` turns its value into ours ({} if it cannot)."""

    seeds: str
    name: str
    to: Callable[[str], Values]
    why: str = ""  # said in the log after the mapping
    secret: bool = False
    metavar: str | None = None  # for a flag: its value's name; None: a switch
    with_upstream: bool = False  # read only with the seed's own upstream (a key for it)


@dataclass(frozen=True, slots=True)
class NotYet:
    """A setting of a part not built yet: it stops the start, naming the issue; or, with
    ``stops`` false (the proxy is of use without the part), a warning says so at start."""

    seeds: str
    name: str
    part: str
    issue: int
    meanwhile: str
    stops: bool = True
    metavar: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A setting we will not honour as it was meant: it stops the start, naming what to
    use instead."""

    seeds: str
    name: str
    instead: str
    metavar: str | None = None


Entry = Mapped | NotYet | Refused


def _debug(raw: str) -> Values:
    value = raw.strip().lower()
    if value in TRUE:
        return {"LOG_LEVEL": "DEBUG"}
    if value in FALSE:
        return {"LOG_LEVEL": "INFO"}
    return {}  # DEBUG=express:* and the like belong to other programs


ENTRIES: tuple[Entry, ...] = (
    Mapped("codingplanproxy", "BASE_URL",
           lambda v: {"UPSTREAM_URL": v, "UPSTREAM_DIALECT": "anthropic"},
           why="codingplanproxy's upstream is always the Anthropic API or a relay of it"),
    Mapped("codingplanproxy", "API_KEY", lambda v: {"UPSTREAM_API_KEY": v}, secret=True,
           with_upstream=True),
    Mapped("codingplanproxy", "MODEL_NAME", lambda v: {"MODEL": v},
           why="the model for requests that name none; a request's own model wins"),
    Mapped("bbd2api and claude-proxy", "DEBUG", _debug),
    Mapped("a2o", "--timeout", lambda v: {"READ_TIMEOUT": v}, metavar="SECONDS",
           why="a2o's timeout was the longest wait for the upstream's next bytes; there is "
               "no total limit here, so long streams are never cut"),
    Mapped("a2o", "--debug", lambda v: {"LOG_LEVEL": "DEBUG"}),
    Mapped("bbd2api", "BBD_API_KEY",
           lambda v: {"UPSTREAM_API_KEY": v, "UPSTREAM_DIALECT": "backboard"}, secret=True,
           why="backboard.io keys, comma-separated, rotated; a conversation keeps its key"),
    Mapped("bbd2api", "BBD_UPSTREAM",
           lambda v: {"UPSTREAM_URL": v, "UPSTREAM_DIALECT": "backboard"}),
    Refused("claudebridge", "-w", "it sized claudebridge's pool of Claude Code processes: "
            "here that is --pool-size N (POOL_SIZE) with --upstream-dialect claude-code; this "
            "proxy's --workers N starts N processes serving the port, another thing",
            metavar="N"),
)

# claudebridge's client variables, read by proxy.client when ours are unset.
CLIENT_ALIASES = (("PROXY_URL", "BRIDGE_URL"), ("PROXY_API_KEY", "OPENROUTER_API_KEY"),
                  ("PROXY_MODEL", "OPENROUTER_MODEL"))

SEED_NOTES = {
    "codingplanproxy": "codingplanproxy sent Claude Code's request headers every time; here "
                       "that takes --claude-code-headers (CLAUDE_CODE_HEADERS=true), off by "
                       "default because it may breach the provider's terms",
}


def flags() -> tuple[Mapped | NotYet | Refused, ...]:
    """The entries that are command-line flags, for the parser."""
    return tuple(e for e in ENTRIES if e.name.startswith("-"))


def flag_help(entry: Entry) -> str:
    if isinstance(entry, Mapped):
        return (f"{entry.seeds}'s {entry.name}, read as "
                f"{_shown(entry, entry.to(entry.metavar or 'x'))}")
    return f"{entry.seeds}'s {entry.name}: refused at start, saying what to use instead"


@dataclass(frozen=True, slots=True)
class Found:
    entry: Entry
    level: str  # a LEVELS name, or the providers file's path
    raw: str

    @property
    def label(self) -> str:
        where = "a flag" if self.level == "flag" else f"from {self.level}"
        return f"{self.entry.name} ({self.entry.seeds}'s, {where})"


def find(given_flags: Mapping[str, str | None], environ: Mapping[str, str],
         dotenv: Mapping[str, str]) -> list[Found]:
    """Their settings present: flags (by name), then variables, the environment first."""
    found = []
    for entry in ENTRIES:
        if entry.name.startswith("-"):
            raw = given_flags.get(entry.name)
            if raw is not None:
                found.append(Found(entry, "flag", raw))
            continue
        if not entry.name.isupper():
            continue
        for level, source in (("environment", environ), (".env", dotenv)):
            if source.get(entry.name):
                found.append(Found(entry, level, source[entry.name]))
                break
    return found


def find_in_file(path: str) -> list[Found]:
    """Keys of theirs in a providers file that parsed already."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    keys = [e for e in ENTRIES if e.name.islower() and not e.name.startswith("-")]
    return [Found(e, path, str(raw[e.name])) for e in keys
            if isinstance(raw, dict) and raw.get(e.name) not in (None, "")]


def refuse(found: Sequence[Found]) -> None:
    """Stop the start if any setting found cannot be honoured, naming each one."""
    lines = [_refusal(f) for f in found if isinstance(f.entry, Refused)
             or (isinstance(f.entry, NotYet) and f.entry.stops)]
    if lines:
        raise SystemExit("llm-dialect-proxy: not starting, because of settings this proxy "
                         "cannot honour (docs/migrating.md):\n  " + "\n  ".join(lines))


def _refusal(found: Found) -> str:
    entry = found.entry
    remove = {"flag": "drop the flag", "environment": "unset it",
              ".env": "delete its line from .env"}.get(found.level,
                                                        f"delete the key from {found.level}")
    if isinstance(entry, NotYet):
        return (f"{found.label}: {entry.part} is not built yet (issue {entry.issue}); "
                f"{remove} to start without it ({entry.meanwhile}).")
    assert isinstance(entry, Refused)
    return f"{found.label}: {entry.instead}; {remove}."


def warnings(found: Sequence[Found]) -> list[Note]:
    """The settings of parts not built yet that do not stop the start: said at start."""
    return [(logging.WARNING, f"{f.label} is not used: {f.entry.part} is not built yet "
             f"(issue {f.entry.issue}); {f.entry.meanwhile}") for f in found
            if isinstance(f.entry, NotYet) and not f.entry.stops]


def apply(found: Sequence[Found], layers: dict[str, Values]) -> tuple[list[Note], set[str]]:
    """Put the mapped values into ``layers`` (one dict per level in LEVELS), under our
    names, unless our own name is given at the same or a higher level; when the first of
    an entry's names is (BASE_URL's UPSTREAM_URL), none of its names is taken. Returns the
    notes and our names taken from theirs."""
    own = {level: set(values) for level, values in layers.items()}
    notes: list[Note] = []
    names: set[str] = set()
    for item in found:
        entry = item.entry
        if not isinstance(entry, Mapped) or entry.with_upstream:
            continue
        values = entry.to(item.raw)
        if not values:
            notes.append((logging.WARNING, f"{item.label}={item.raw!r} is not 0 or 1, so it "
                          "is not read as a log level"))
            continue
        higher = LEVELS[:LEVELS.index(item.level) + 1]
        ours = {k: next((lv for lv in higher if k in own[lv]), None) for k in values}
        taken = {} if ours[next(iter(values))] else {
            k: v for k, v in values.items() if ours[k] is None}
        layers[item.level].update(taken)
        names.update(taken)
        if taken:
            why = f": {entry.why}" if entry.why else ""
            notes.append((logging.INFO, f"{item.label} read as {_shown(entry, taken)}{why}"))
        beaten = [f"{k} ({level})" for k, level in ours.items() if level]
        if beaten:
            notes.append((logging.WARNING, f"{item.label} not used: ours is given, "
                          f"{', '.join(beaten)}"))
    return notes, names


def fallbacks(raw: Values, found: Sequence[Found], taken: set[str], cwd: Path) -> list[Note]:
    """With no upstream given at all: the Go proxy's ``config.json`` in the working
    directory, else codingplanproxy's default upstream when its API_KEY is there. Then the
    settings that go with codingplanproxy's upstream (API_KEY), if that is the upstream:
    a stray API_KEY must never reach another one."""
    notes: list[Note] = []
    bound = [f for f in found if isinstance(f.entry, Mapped) and f.entry.with_upstream]
    theirs = "UPSTREAM_URL" in taken
    if not (raw.get("UPSTREAM_URL") or raw.get("CONFIG_PATH")):
        if (cwd / GO_CONFIG).is_file():
            raw["CONFIG_PATH"] = str(cwd / GO_CONFIG)
            notes.append((logging.INFO, f"{GO_CONFIG} in the working directory read as "
                          f"CONFIG_PATH={raw['CONFIG_PATH']}, as the Go claude-proxy does "
                          "when no other upstream is given"))
        elif bound:
            raw["UPSTREAM_URL"], theirs = ANTHROPIC_API, True
            raw.setdefault("UPSTREAM_DIALECT", "anthropic")
            notes.append((logging.INFO, f"no BASE_URL: UPSTREAM_URL={ANTHROPIC_API}, "
                          "UPSTREAM_DIALECT=anthropic, codingplanproxy's default"))
    for item in bound:
        entry = item.entry
        assert isinstance(entry, Mapped)
        values = entry.to(item.raw)
        given = [k for k in values if k in raw]
        if not theirs:
            notes.append((logging.WARNING, f"{item.label} not used: it goes with "
                          f"{entry.seeds}'s BASE_URL, and the upstream here is another; "
                          f"give its key as {', '.join(values)}"))
        elif given:
            notes.append((logging.WARNING, f"{item.label} not used: ours is given, "
                          f"{', '.join(given)}"))
        else:
            raw.update(values)
            notes.append((logging.INFO, f"{item.label} read as {_shown(entry, values)}"))
    seeds = {f.entry.seeds for f in found}
    if "codingplanproxy" in seeds and raw.get("CLAUDE_CODE_HEADERS", "").lower() not in TRUE:
        notes.append((logging.INFO, SEED_NOTES["codingplanproxy"]))
    return notes


def _shown(entry: Mapped, values: Values) -> str:
    return ", ".join(f"{k}={'***' if entry.secret and 'KEY' in k else v}"
                     for k, v in values.items())
