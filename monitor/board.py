"""Both styles on one board: merged list pages, the overview (alerts, queue, counters), sagas.

The board only talks to each variant's read API (`shared.read_model.ReadModel`) and, for
operator actions, to the runtime's operator methods. Reads are shared between pages for a
moment (`MonitorSettings.cache_s`), so ten open tabs cost the engines one read; a style that
cannot be read is reported in one line while the other is still shown.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

from monitor.params import ListRequest, cursor
from monitor.settings import MonitorSettings
from shared.read_model import (
    ENDED,
    Alert,
    Counters,
    InterventionView,
    ListedStatus,
    PageKey,
    ReadModel,
    SagaDetail,
    SagaQuery,
    SagaRow,
    is_order,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@runtime_checkable
class Operator(Protocol):
    """A runtime's operator methods on a saga waiting for a person (same effect in both)."""

    async def retry_compensation(self, saga_id: str, who: str) -> Any: ...

    async def retry_step(self, saga_id: str, who: str) -> Any: ...

    async def resolve(self, saga_id: str, who: str, note: str) -> Any: ...


Locks = Callable[[str, str], Awaitable[str | None]]
"""``(variant, saga_id) ->`` the semantic lock the saga waits on, or None (the services' read)."""


class NoActions(RuntimeError):
    """This deployment offers no operator actions for the style (read-only)."""


@dataclass(frozen=True)
class CounterView:
    """One style's counters, ready to show."""

    variant: str
    in_flight: int
    per_minute: dict[ListedStatus, int]
    p50_s: float | None
    p95_s: float | None
    samples: int


@dataclass(frozen=True)
class Overview:
    """What sits at the top of the page: alerts, the intervention queue, the counters."""

    alerts: list[Alert]
    interventions: list[InterventionView]
    counters: list[CounterView]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of the merged list and the cursor of the next one (None: the last page)."""

    rows: list[SagaRow]
    next_after: str | None
    errors: dict[str, str] = field(default_factory=dict)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (None without samples)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def counter_view(counters: Counters) -> CounterView:
    return CounterView(
        variant=counters.variant,
        in_flight=counters.in_flight,
        per_minute={status: counters.ended_last_minute.get(status, 0) for status in ENDED},
        p50_s=percentile(counters.latencies_s, 0.50),
        p95_s=percentile(counters.latencies_s, 0.95),
        samples=len(counters.latencies_s),
    )


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


class Board:
    """Both read APIs behind one set of answers; operator actions where a runtime offers them."""

    def __init__(
        self,
        models: Mapping[str, ReadModel],
        settings: MonitorSettings,
        operators: Mapping[str, Operator] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        steps: Sequence[str],
        locks: Locks | None = None,
    ) -> None:
        self.models = dict(models)
        self.settings = settings
        self.steps = tuple(steps)
        """Every step and compensation of the saga definition watched (the step filter)."""
        self.operators = dict(operators or {})
        self.clock = clock
        self.locks = locks
        """Where a running saga's semantic lock waits are read (none: not shown)."""
        self._cache: dict[object, tuple[float, asyncio.Future[Any]]] = {}

    async def page(self, request: ListRequest) -> Page:
        chosen = [v for v in request.variants if v in self.models]
        wider = request.query.model_copy(update={"limit": request.query.limit + 1})
        now = self.clock()
        found = await asyncio.gather(
            *(self._shared(("list", v, wider), partial(self._list, v, wider, now)) for v in chosen),
            return_exceptions=True,
        )
        rows: list[SagaRow] = []
        errors: dict[str, str] = {}
        for variant, result in zip(chosen, found, strict=True):
            if isinstance(result, BaseException):
                errors[variant] = self._failed(variant, result)
            else:
                rows += result
        rows.sort(key=lambda r: (PageKey.of(r).sort_key(), r.saga_id), reverse=True)
        shown = rows[: request.query.limit]
        more = len(rows) > len(shown)
        next_after = cursor(PageKey.of(shown[-1])) if more and shown else None
        return Page(shown, next_after, errors)

    async def overview(self) -> Overview:
        return await self._shared(("overview",), self._overview)

    async def saga(self, variant: str, saga_id: str) -> SagaDetail | None:
        model = self.models.get(variant)
        if model is None:
            return None
        return await self._shared(
            ("saga", variant, saga_id), lambda: self._detail(variant, saga_id)
        )

    async def _detail(self, variant: str, saga_id: str) -> SagaDetail | None:
        """The saga as its read API tells it, with the semantic lock it waits on, if any."""
        detail = await self.models[variant].saga(saga_id)
        if detail is None or self.locks is None or not detail.row.status.in_flight:
            return detail
        return detail.model_copy(update={"waiting_on": await self.locks(variant, saga_id)})

    async def order(self, order_id: str, saga_id: str | None) -> dict[str, SagaDetail | None]:
        """Each style's saga of the order (found by the id it was given, held as is or with a
        run's tag): the one with ``saga_id`` if given, else the latest, the same saga id in
        both styles where there is one."""
        query = SagaQuery(search=order_id, limit=200)
        now = self.clock()
        found = {
            variant: [
                r for r in await self._list(variant, query, now) if is_order(r.order_id, order_id)
            ]
            for variant in self.models
        }
        if saga_id is None:
            newest = sorted(
                (r for rows in found.values() for r in rows),
                key=lambda r: (PageKey.of(r).sort_key(), r.saga_id),
                reverse=True,
            )
            saga_id = newest[0].saga_id if newest else None
        pairs: dict[str, SagaDetail | None] = {}
        for variant, rows in found.items():
            picked = next((r for r in rows if r.saga_id == saga_id), rows[0] if rows else None)
            pairs[variant] = None if picked is None else await self.saga(variant, picked.saga_id)
        return pairs

    def can_act(self, variant: str) -> bool:
        return variant in self.operators

    async def retry_compensation(self, variant: str, saga_id: str, who: str) -> Any:
        result = await self._operator(variant).retry_compensation(saga_id, who)
        self._cache.clear()
        return result

    async def retry_step(self, variant: str, saga_id: str, who: str) -> Any:
        result = await self._operator(variant).retry_step(saga_id, who)
        self._cache.clear()
        return result

    async def resolve(self, variant: str, saga_id: str, who: str, note: str) -> Any:
        result = await self._operator(variant).resolve(saga_id, who, note)
        self._cache.clear()
        return result

    # -- helpers ---------------------------------------------------------------------------

    def _operator(self, variant: str) -> Operator:
        operator = self.operators.get(variant)
        if operator is None:
            raise NoActions(f"operator actions are not available for {variant} here")
        return operator

    async def _list(self, variant: str, query: SagaQuery, now: float) -> list[SagaRow]:
        return await self.models[variant].list_sagas(query, now)

    async def _overview(self) -> Overview:
        now = self.clock()
        names = list(self.models)
        found = await asyncio.gather(
            *(self._parts(self.models[name], now) for name in names), return_exceptions=True
        )
        alerts: list[Alert] = []
        queue: list[InterventionView] = []
        counters: list[CounterView] = []
        errors: dict[str, str] = {}
        for variant, result in zip(names, found, strict=True):
            if isinstance(result, BaseException):
                errors[variant] = self._failed(variant, result)
                continue
            alerts += result[0]
            queue += result[1]
            counters.append(counter_view(result[2]))
        alerts.sort(key=lambda a: a.last_progress_at or a.row.started_at)
        queue.sort(key=lambda view: view.since)
        return Overview(alerts, queue, counters, errors)

    async def _parts(
        self, model: ReadModel, now: float
    ) -> tuple[list[Alert], list[InterventionView], Counters]:
        """One style's part of the overview, its three reads at once."""
        quiet, warn = self.settings.stuck_after_s, self.settings.deadline_warning_s
        alerts, queue, counters = await asyncio.gather(
            model.alerts(now, quiet, warn), model.interventions(), model.counters(now)
        )
        return alerts, queue, counters

    def _failed(self, variant: str, error: BaseException) -> str:
        log.warning("reading %s failed", variant, exc_info=error)
        return f"cannot read {variant}: {one_line(error)}"

    async def _shared(self, key: object, read: Callable[[], Awaitable[T]]) -> T:
        """One read per key per ``cache_s``, shared by every request asking meanwhile."""
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] > self.settings.cache_s:
            if len(self._cache) > 1_000:
                self._cache.clear()
            future: asyncio.Future[Any] = asyncio.ensure_future(read())
            cached = (now, future)
            self._cache[key] = cached
            future.add_done_callback(lambda f: self._forget(key, f))
        result: T = await asyncio.shield(cached[1])
        return result

    def _forget(self, key: object, future: asyncio.Future[Any]) -> None:
        """A failed read is not shared: the next request tries again."""
        if future.cancelled() or future.exception() is not None:
            entry = self._cache.get(key)
            if entry is not None and entry[1] is future:
                del self._cache[key]
