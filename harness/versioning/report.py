"""The versioning matrix as a table: ``versioning.html``, ``versioning.md``, ``versioning.json``.

One row per store, strategy and style's arm: the share of version-1 sagas that reached the
right end (status and reason, recorded as version 1), invariant violations, dead letters,
stuck sagas by cause, the operator actions needed, the time until no version-1 saga was left,
whether version 2's own sagas ran, and a link to the swimlanes of a saga that crossed
versions (parked before ``deduct_points``: charged by version 1, finished after the upgrade).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness.report.render import write_report
from harness.report.traces import SagaTrace, load_traces
from harness.versioning.cell import VariantResult, action_count
from harness.versioning.matrix import StoreCell, VersioningDocument

_ENV = Environment(
    loader=PackageLoader("harness.versioning", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
LANES = "lanes"


@dataclass(frozen=True)
class Row:
    store: str
    strategy: str
    variant: str
    arm: str
    right: str
    all_right: bool
    misrecorded: int
    violations: str
    dead_letters: int
    stuck: str
    actions: int
    action_texts: list[str]
    v1_gone: str
    fresh: str
    downtime: str
    lanes: str | None
    positions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    document: VersioningDocument
    command: str
    commit: str
    rows: list[Row]
    positions: list[str]

    @property
    def load(self) -> str:
        before = ", ".join(f"{x:.2f}" for x in self.document.machine.load_before)
        after = ", ".join(f"{x:.2f}" for x in self.document.machine.load_after)
        return f"{before} before, {after} after ({self.document.machine.cpus} CPUs)"


def write(
    folder: Path, document: VersioningDocument, command: str, commit: str, traces: Path | None
) -> Path:
    """Write the three files (and the swimlane pages when traces were kept); the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "versioning.json").write_text(
        json.dumps(
            {"command": command, "commit": commit, **document.model_dump(mode="json")}, indent=1
        )
        + "\n",
        encoding="utf-8",
    )
    lanes = _lanes(folder, document, traces) if traces is not None else {}
    view = build_view(document, command, commit, lanes)
    (folder / "versioning.md").write_text(render("versioning.md", view), encoding="utf-8")
    page = folder / "versioning.html"
    page.write_text(render("versioning.html", view), encoding="utf-8")
    return page


def render(template: str, view: View) -> str:
    return _ENV.get_template(template).render(view=view)


def build_view(
    document: VersioningDocument, command: str, commit: str, lanes: dict[str, str]
) -> View:
    rows = []
    positions: list[str] = []
    for item in document.cells:
        cell = item.cell
        downtime = "-"
        if cell.upgrade.new_release_at is not None and cell.strategy == "swap":
            downtime = f"{cell.upgrade.new_release_at - cell.upgrade.started_at:.1f} s"
        for result in cell.variants:
            per_position = _per_position(result)
            positions += [p for p in per_position if p not in positions]
            rows.append(
                Row(
                    store=item.store,
                    strategy=cell.strategy,
                    variant=result.variant,
                    arm=result.arm,
                    right=f"{result.right}/{len(result.sagas)} ({result.share:.0%})",
                    all_right=result.right == len(result.sagas) and not result.misrecorded,
                    misrecorded=result.misrecorded,
                    violations=", ".join(result.invariants_violated) or "none",
                    dead_letters=result.dead_letters,
                    stuck=_stuck(result),
                    actions=action_count(result),
                    action_texts=[
                        f"{a.times} sagas: {a.text}" if a.times > 1 else a.text
                        for a in result.operator_actions
                    ],
                    v1_gone="never" if result.v1_gone_s is None else f"{result.v1_gone_s:.1f} s",
                    fresh=f"{sum(1 for f in result.fresh if f.right)}/{len(result.fresh)}",
                    downtime=downtime,
                    lanes=lanes.get(cell_key(item)),
                    positions=per_position,
                )
            )
    return View(document, command, commit, rows, positions)


def _stuck(result: VariantResult) -> str:
    if not result.stuck:
        return "0"
    return ", ".join(f"{n} {cause}" for cause, n in sorted(result.stuck.items()))


def _per_position(result: VariantResult) -> dict[str, str]:
    total: Counter[str] = Counter(s.position for s in result.sagas)
    right: Counter[str] = Counter(s.position for s in result.sagas if s.right)
    return {p: f"{right[p]}/{n}" for p, n in total.items()}


def cell_key(item: StoreCell) -> str:
    """A cell's name in file names: its swimlanes are ``lanes/<key>/report.html``."""
    cell = item.cell
    return f"{item.store}-{cell.workflow}-{cell.events}-{cell.strategy}"


def _lanes(folder: Path, document: VersioningDocument, traces: Path) -> dict[str, str]:
    """Per cell, a report page with the swimlanes of each style's crossing saga."""
    found: dict[str, str] = {}
    for item in document.cells:
        if item.cell.traces is None or not (traces / item.cell.traces).is_file():
            continue
        wanted = {v.crossing for v in item.cell.variants if v.crossing is not None}
        sagas: list[SagaTrace] = [
            s for s in load_traces(traces / item.cell.traces) if s.saga_id in wanted
        ]
        if not sagas:
            continue
        target = folder / LANES / cell_key(item)
        write_report(target, None, sagas)
        found[cell_key(item)] = f"{LANES}/{cell_key(item)}/report.html"
    return found
