"""Countermeasures: which isolation countermeasure each domain service applies (docs/anomalies.md).

A saga gives up isolation: its steps commit one by one, so a concurrent saga can see or overwrite
its half-done work. Each countermeasure of Frank & Zahle (1998) this domain needs is a switch
of the services, given once at a process's composition root (``SAGA_COUNTERMEASURES``, passed to
``Domain``); the naive behaviour sits beside each countermeasure in its service, one function
each. The defaults are what the services did before the switches existed, plus the points
lock; ``reread_value`` is off because ``by_value`` already prevents the anomaly it guards.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ALL = "all"
NONE = "none"


class Countermeasures(BaseModel):
    """One switch per countermeasure (True: applied)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commutative_updates: bool = True
    """Inventory: a release adds the reserved quantity back (off: writes back the stock the
    reservation read, a snapshot that wipes what other sagas did meanwhile)."""
    points_lock: bool = True
    """Points: a semantic lock. A deduction stays pending until its saga ends; another saga of
    the customer whose answer depends on it waits (retries) instead of refusing on it."""
    by_value: bool = True
    """Payment: charges the total the saga carries, the prices admitted with the order (off:
    charges the catalogue's prices as they are when the charge runs)."""
    reread_value: bool = False
    """Payment: re-reads the catalogue's prices before charging and refuses with
    ``price_changed`` when they moved since the order was admitted."""
    order_lock: bool = True
    """Orders: the order's status moves only from its pending state (checked transitions);
    off, every write of the status is blind and the last one wins."""
    version_file: bool = True
    """Every service: a fence or compensation that finds nothing to undo leaves a tombstone,
    so the forward step, should it still come, is refused (off: it commits, late)."""

    @classmethod
    def parse(cls, text: str) -> Countermeasures:
        """``SAGA_COUNTERMEASURES``: comma-separated terms over the defaults, each ``NAME``
        (on) or ``-NAME`` (off); ``all`` or ``none`` first sets every switch. Raises
        ValueError naming the first unknown term."""
        values = cls().model_dump()
        for index, raw in enumerate(term.strip() for term in text.split(",")):
            if not raw:
                continue
            if index == 0 and raw in (ALL, NONE):
                values = dict.fromkeys(values, raw == ALL)
                continue
            name, on = (raw[1:], False) if raw.startswith("-") else (raw, True)
            if name not in values:
                names = ", ".join(values)
                raise ValueError(
                    f"unknown countermeasure {raw!r}; use {names} (or -NAME, all, none)"
                )
            values[name] = on
        return cls(**values)

    @classmethod
    def only_off(cls, *names: str) -> Countermeasures:
        """The defaults with these switches off."""
        return cls.parse(",".join(f"-{name}" for name in names))

    @property
    def text(self) -> str:
        """The shortest ``parse`` text giving these switches (empty: the defaults)."""
        default = Countermeasures()
        return ",".join(
            name if on else f"-{name}"
            for name, on in self.model_dump().items()
            if getattr(default, name) != on
        )

    @property
    def off(self) -> tuple[str, ...]:
        return tuple(name for name, on in self.model_dump().items() if not on)


DEFAULT = Countermeasures()
"""The services' behaviour in production."""

NAMES: tuple[str, ...] = tuple(Countermeasures.model_fields)
