"""Everything a user sends, validated: list filters, ids, cursors, operator names and notes.

Each parser returns a typed value or raises `BadInput` with one line naming the parameter, the
value's problem and what is accepted; the app answers that with a 400, never a traceback.
Values that reach a visibility query or SQL are restricted to safe characters here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from shared.read_model import ListedStatus, PageKey, SagaQuery

VARIANTS = ("orchestration", "choreography")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_AGE = re.compile(r"^(\d{1,6})([smhd]?)$")
_AFTER = re.compile(r"^([oc])(\d{1,12}(?:\.\d{1,9})?)$")
_WHO = re.compile(r"^[A-Za-z0-9_.@ -]{1,64}$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}
MAX_AGE_S = 366 * 86_400
MAX_NOTE = 500
T = TypeVar("T")
LIST_PARAMS = ("variant", "status", "step", "min_age", "max_age", "q", "after", "limit")


class BadInput(ValueError):
    """A value the monitor refuses; its message is the one line the user sees."""


@dataclass(frozen=True)
class ListRequest:
    """A list page as asked for: which styles, and the query each read API answers."""

    variants: tuple[str, ...]
    query: SagaQuery


def one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The parameter's single value (None when absent or empty); twice is an error."""
    values = [v for v in params.get(name, ()) if v != ""]
    if len(values) > 1:
        raise BadInput(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def variant(value: str) -> str:
    if value not in VARIANTS:
        raise BadInput(f"variant {_shown(value)} is unknown; use {' or '.join(VARIANTS)}")
    return value


def saga_key(value: str, what: str = "saga id") -> str:
    if not _ID.match(value):
        raise BadInput(f"{what} {_shown(value)} is invalid; use 1-64 letters, digits, _ or -")
    return value


def age(value: str, name: str) -> float:
    """A duration like ``90``, ``30s``, ``5m``, ``2h`` or ``1d`` in seconds."""
    match = _AGE.match(value)
    if match is None:
        raise BadInput(f"{name} {_shown(value)} is not a duration; use e.g. 30s, 5m, 2h or 1d")
    seconds = float(int(match.group(1)) * _UNITS[match.group(2)])
    if seconds > MAX_AGE_S:
        raise BadInput(f"{name} {_shown(value)} is over a year; use a shorter duration")
    return seconds


def after(value: str) -> PageKey:
    match = _AFTER.match(value)
    if match is None:
        raise BadInput(f"after {_shown(value)} is not a page cursor; follow the page's links")
    return PageKey(open=match.group(1) == "o", at=float(match.group(2)))


def cursor(key: PageKey) -> str:
    """The ``after`` value of the page that follows ``key``."""
    return f"{'o' if key.open else 'c'}{key.at:.6f}"


def statuses(values: Sequence[str]) -> tuple[ListedStatus, ...]:
    chosen = []
    for value in values:
        for part in value.split(","):
            if part not in ListedStatus.__members__:
                known = ", ".join(ListedStatus.__members__)
                raise BadInput(f"status {_shown(part)} is unknown; use one of {known}")
            chosen.append(ListedStatus(part))
    return tuple(dict.fromkeys(chosen))


def step(value: str, steps: Sequence[str]) -> str:
    """A step or compensation of the saga definition the monitored deployment runs."""
    if value not in steps:
        raise BadInput(f"step {_shown(value)} is unknown; use one of {', '.join(steps)}")
    return value


def limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 200:
        raise BadInput(f"limit {_shown(value)} is out of range; use 1 to 200")
    return int(value)


def list_request(params: Mapping[str, Sequence[str]], steps: Sequence[str]) -> ListRequest:
    """The list page's filters from the query string (``steps``: the definition's)."""
    chosen = one(params, "variant")
    min_age = one(params, "min_age")
    max_age = one(params, "max_age")
    query = SagaQuery(
        statuses=statuses([v for v in params.get("status", ()) if v]),
        step=_maybe(one(params, "step"), lambda value: step(value, steps)),
        min_age_s=None if min_age is None else age(min_age, "min_age"),
        max_age_s=None if max_age is None else age(max_age, "max_age"),
        search=_maybe(one(params, "q"), lambda v: saga_key(v.strip(), "search")),
        after=_maybe(one(params, "after"), after),
        limit=_maybe(one(params, "limit"), limit) or 50,
    )
    low, high = query.min_age_s, query.max_age_s
    if low is not None and high is not None and low > high:
        raise BadInput("min_age is larger than max_age; no saga can match both")
    return ListRequest(VARIANTS if chosen is None else (variant(chosen),), query)


def who(value: str | None) -> str:
    """The operator's name, recorded with the action."""
    value = (value or "").strip()
    if not _WHO.match(value):
        raise BadInput("who: give your name (1-64 letters, digits, spaces, _ . @ or -)")
    return value


def note(value: str | None) -> str:
    """A resolution note: one to 500 printable characters (line breaks allowed)."""
    value = (value or "").strip()
    if not value:
        raise BadInput("note: say what was done by hand (1-500 characters)")
    if len(value) > MAX_NOTE:
        raise BadInput(f"note: {len(value)} characters; keep it to {MAX_NOTE}")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise BadInput("note: control characters are not allowed")
    return value


def _maybe(value: str | None, parse: Callable[[str], T]) -> T | None:
    return None if value is None else parse(value)


def _shown(value: str) -> str:
    """A user's value quoted for a message: printable, at most 40 characters."""
    clean = "".join(c if c.isprintable() else "?" for c in value)
    return repr(clean[:40] + ("..." if len(clean) > 40 else ""))
