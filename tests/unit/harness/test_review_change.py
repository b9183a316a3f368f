"""The review's change rows, read from a versioning document built here: per style, the arms that
ended every parked version-1 saga right by each strategy, what the arm without versioning left,
the operator actions, the time until no version-1 saga was left, the lines of the change and the
defects; each finding says where the styles differ; the cells link to the swimlanes of each
cell's crossing saga. A review without the matrix says why on its change row."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from harness.compare.conditions import RunConditions, gather
from harness.review import run
from harness.review.code_size import Module, PackageSize
from harness.review.dimensions import Change
from harness.review.gather import ChangeLines, Evidence, ReviewPlan, VersioningEvidence
from harness.review.page import build_page, render_html, render_markdown
from harness.versioning.cell import Action, CellResult, SagaResult, VariantResult
from harness.versioning.lines import PackageChange, per_package, table
from harness.versioning.matrix import PAIRS, Machine, StoreCell, VersioningDocument
from harness.versioning.observe import DEAD_LETTERED, NO_WORKER, NONDETERMINISM, UNREAD
from harness.versioning.positions import POSITIONS
from harness.versioning.upgrade import UpgradeLog
from shared.definitions import ORDERS_V1
from shared.servers import ServerError
from shared.settings import Settings

PAGE = "versioning/versioning.html"
PARKED = len(POSITIONS)


@dataclass(frozen=True)
class Seen:
    """What one style's arm did in one cell."""

    right: int = PARKED
    misrecorded: int = 0
    stuck: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    actions: tuple[Action, ...] = ()
    gone: float | None = 30.0
    violated: tuple[str, ...] = ()
    fresh_right: bool = True


REDEPLOY = Action(text="deploy workers running the patched workflow code")
V1_AGAIN = Action(text="run the v1 workers again until their version drains")
UNREAD_AGAIN = Action(text="run the old release's processes again until its sagas drain")


def republish(times: int) -> Action:
    return Action(text="re-publish the saga's dead letters once a consumer reads them", times=times)


AS_THE_DOCS_SAY = {
    ("none", "swap"): Seen(1, stuck={NONDETERMINISM: 6}, actions=(REDEPLOY,), gone=None),
    ("strict", "swap"): Seen(
        0, stuck={DEAD_LETTERED: 7}, dead_letters=7, actions=(republish(7),), gone=None
    ),
    ("none", "rolling"): Seen(gone=40.0),
    ("strict", "rolling"): Seen(
        1, 1, {DEAD_LETTERED: 6}, dead_letters=9, actions=(republish(6),), gone=None
    ),
    ("patched", "swap"): Seen(gone=45.0),
    ("tolerant", "swap"): Seen(misrecorded=PARKED, gone=18.0),
    ("patched", "rolling"): Seen(gone=34.0),
    ("tolerant", "rolling"): Seen(misrecorded=PARKED, gone=10.0),
    ("pinned", "swap"): Seen(0, stuck={NO_WORKER: 7}, actions=(V1_AGAIN,), gone=None),
    ("dual-publish", "swap"): Seen(0, stuck={UNREAD: 7}, actions=(UNREAD_AGAIN,), gone=None),
    ("pinned", "rolling"): Seen(gone=59.0),
    ("dual-publish", "rolling"): Seen(misrecorded=PARKED, gone=25.0),
    ("auto-upgrade", "swap"): Seen(gone=74.0),
    ("stored-upcast", "swap"): Seen(gone=23.0),
    ("auto-upgrade", "rolling"): Seen(gone=76.0),
    ("stored-upcast", "rolling"): Seen(gone=28.0),
}
"""The SQLite run of docs/versioning.md, scaled to one saga per position."""


def result(variant: str, arm: str, seen: Seen) -> VariantResult:
    causes = [cause for cause, n in seen.stuck.items() for _ in range(n)]
    sagas = [
        SagaResult(
            saga_id=f"{variant}-{arm}-{n}",
            position=position.name,
            expected="COMPLETED",
            ended="COMPLETED" if n < seen.right else f"stuck: {causes[n - seen.right]}",
            right=n < seen.right,
            recorded_right=n >= seen.misrecorded,
        )
        for n, position in enumerate(POSITIONS)
    ]
    fresh = SagaResult(
        saga_id=f"{variant}-{arm}-fresh",
        position="v2 happy",
        expected="COMPLETED",
        ended="COMPLETED" if seen.fresh_right else "failed: RuntimeError",
        right=seen.fresh_right,
    )
    return VariantResult(
        variant=variant,
        arm=arm,
        sagas=sagas,
        right=seen.right,
        misrecorded=seen.misrecorded,
        invariants_violated=list(seen.violated),
        stuck=seen.stuck,
        dead_letters=seen.dead_letters,
        dead_letter_reasons={},
        operator_actions=list(seen.actions),
        v1_gone_s=seen.gone,
        fresh=[fresh, fresh.model_copy(update={"position": "v2 shipment failed"})],
        crossing=sagas[3].saga_id,
    )


def versioning_document(changed: dict[tuple[str, str], Seen] | None = None) -> VersioningDocument:
    """Every cell of the matrix on SQLite, each style's arm doing what ``AS_THE_DOCS_SAY``
    (overridden by ``changed``) says."""
    seen = {**AS_THE_DOCS_SAY, **(changed or {})}
    cells = []
    for workflow, events in PAIRS:
        for strategy in ("swap", "rolling"):
            cell = CellResult(
                workflow=workflow,
                events=events,
                strategy=strategy,
                per_position=1,
                tag="t",
                upgrade=UpgradeLog(strategy=strategy, to="v2", started_at=0.0),
                released_at=0.0,
                started_at=0.0,
                finished_at=0.0,
                variants=[
                    result("orchestration", workflow, seen[workflow, strategy]),
                    result("choreography", events, seen[events, strategy]),
                ],
            )
            cells.append(StoreCell(store="sqlite", cell=cell))
    return VersioningDocument(
        per_position=1,
        strategies=["swap", "rolling"],
        stores=["sqlite"],
        cells=cells,
        started_at=0.0,
        finished_at=300.0,
        machine=Machine(
            cpus=2, load_before=(1, 1, 1), load_after=(1, 1, 1), python="3", system="Linux"
        ),
        quiet_s=10.0,
        bound_s=180.0,
        window_s=30.0,
    )


LINES = ChangeLines(
    {
        "shared": PackageChange("shared", 10, 264, 8),
        "orchestration": PackageChange("orchestration", 7, 372, 38),
        "choreography": PackageChange("choreography", 14, 693, 120),
    },
    "versioning/lines.md",
)
LANES = {
    "sqlite-patched-tolerant-swap": "versioning/lanes/sqlite-patched-tolerant-swap/report.html",
    "sqlite-none-strict-swap": "versioning/lanes/sqlite-none-strict-swap/report.html",
}


def evidence(
    tmp_path: Path, doc: VersioningDocument | None, lines: ChangeLines | None = LINES
) -> Evidence:
    code = {
        "orchestration": PackageSize("orchestration", (Module("orchestration/a.py", 100),)),
        "choreography": PackageSize("choreography", (Module("choreography/a.py", 250),)),
    }
    found = Evidence(tmp_path, ORDERS_V1, code, conditions())
    if doc is not None:
        missing = "" if lines else "git could not count them (bad revision)"
        found.versioning = VersioningEvidence(
            tmp_path / "versioning", doc, conditions(), PAGE, LANES, lines, missing
        )
    return found


@cache
def conditions() -> RunConditions:
    """Taken once: each taking asks git and the servers for their versions."""
    return gather(store="sqlite", definition="v1, then v2")


def rows(tmp_path: Path, doc: VersioningDocument | None = None) -> dict[str, dict[str, str]]:
    """Each change row's cell texts by the first words of its question."""
    found = Change().rows(evidence(tmp_path, doc or versioning_document()))
    return {
        row.question.split(" (")[0].split(":")[0]: {s: c.text for s, c in row.cells.items()}
        for row in found
    }


def test_each_style_names_the_arms_that_ended_every_parked_saga_right_by_each_strategy(
    tmp_path: Path,
) -> None:
    (row, *_) = Change().rows(evidence(tmp_path, versioning_document()))

    assert row.question.startswith(
        "version 2 deployed by swap and rolling over 7 version-1 sagas per style (1 per position)"
    )
    assert row.cells["orchestration"].text == (
        "swap: patched, auto-upgrade; rolling: none, patched, pinned, auto-upgrade"
    )
    assert row.cells["choreography"].text == (
        "swap: tolerant, stored-upcast; rolling: tolerant, dual-publish, stored-upcast;"
        " recorded as another version by tolerant, dual-publish"
    )
    assert row.finding == (
        "Arms that brought every version-1 saga to its right end: in the orchestration patched,"
        " auto-upgrade (both strategies) and none, pinned (rolling only); in the choreography"
        " tolerant, stored-upcast (both strategies) and dual-publish (rolling only)."
    )
    assert row.run == "versioning" and row.cells["orchestration"].ok is None


def test_the_arm_without_versioning_shows_what_each_strategy_left_and_the_finding_compares(
    tmp_path: Path,
) -> None:
    (_, row, *_) = Change().rows(evidence(tmp_path, versioning_document()))

    assert row.question.startswith("without versioning (orchestration none, choreography strict)")
    assert row.cells["orchestration"].text == (
        "swap: 6 of 7 stuck (non-determinism error), 0 dead letters, 1 operator action;"
        " rolling: 0 of 7 stuck, 0 dead letters, 0 operator actions"
    )
    assert row.cells["choreography"].text == (
        "swap: 7 of 7 stuck (events dead-lettered), 7 dead letters, 7 operator actions;"
        " rolling: 6 of 7 stuck (events dead-lettered), 9 dead letters, 6 operator actions"
    )
    assert row.finding == (
        "Without versioning (none, strict), a swap leaves 6 of 7 version-1 sagas stuck in the"
        " orchestration (non-determinism error; 1 operator action to end them) against 7 of 7"
        " in the choreography (events dead-lettered; 7 operator actions to end them); a rolling"
        " upgrade leaves 0 of 7 version-1 sagas stuck in the orchestration against 6 of 7 in"
        " the choreography (events dead-lettered; 6 operator actions to end them)."
    )


def test_operator_actions_and_the_time_until_version_1_was_gone_are_per_style(
    tmp_path: Path,
) -> None:
    found = Change().rows(evidence(tmp_path, versioning_document()))
    actions, gone = found[2], found[3]

    assert actions.cells["orchestration"].text == "2 in 2 of 8 cells: none swap 1, pinned swap 1"
    assert actions.cells["choreography"].text == (
        "14 in 3 of 8 cells: strict swap 7, strict rolling 6, dual-publish swap 1"
    )
    assert actions.cells["choreography"].title.startswith(
        "strict swap: re-publish the saga's dead letters once a consumer reads them (x7);"
    )
    assert actions.finding == (
        "Operator actions needed before every version-1 saga ended: 2 in the orchestration"
        " (2 of 8 cells) and 14 in the choreography (3 of 8 cells)."
    )
    assert gone.cells["orchestration"].text == (
        "swap 45-74 s; rolling 34-76 s; never in 2 cells (none swap, pinned swap)"
    )
    assert gone.cells["choreography"].text == (
        "swap 18-23 s; rolling 10-28 s;"
        " never in 3 cells (strict swap, strict rolling, dual-publish swap)"
    )
    assert gone.finding == (
        "Where every version-1 saga ended, the last one ended 34-76 s in the orchestration and"
        " 10-28 s in the choreography after the upgrade started."
    )


def test_the_lines_of_the_change_are_per_style_beside_shared_ones(tmp_path: Path) -> None:
    lines = Change().rows(evidence(tmp_path, versioning_document()))[4]

    assert lines.cells["orchestration"].text == "+372 -38 in 7 files"
    assert lines.cells["choreography"].text == "+693 -120 in 14 files"
    assert lines.cells["choreography"].href == "versioning/lines.md"
    assert "(both share +264 -8 in 10 files of shared/)" in lines.question
    assert lines.run == "code"
    assert lines.finding == (
        "The change added 1.9x the lines to the choreography that it added to the orchestration"
        " (693 against 372, beside 264 in shared/ for both)."
    )
    uncounted = Change().rows(evidence(tmp_path, versioning_document(), lines=None))[4]
    assert uncounted.cells["orchestration"].text == (
        "not counted: git could not count them (bad revision)"
    )


def test_the_lines_are_summed_per_package_from_each_files_count() -> None:
    files = {
        "choreography/events.py": (70, 6),
        "choreography/versions.py": (172, 0),
        "orchestration/workflows.py": (66, 2),
    }

    found = per_package(files)

    assert found["choreography"] == PackageChange("choreography", 2, 242, 6)
    assert found["shared"] == PackageChange("shared", 0, 0, 0)
    assert table(files)[-2:] == [
        "| orchestration | 1 files | 66 | 2 |",
        "| choreography | 2 files | 242 | 6 |",
    ]


def test_no_defect_holds_the_required_row_and_a_violated_invariant_fails_the_review(
    tmp_path: Path,
) -> None:
    held = Change().rows(evidence(tmp_path, versioning_document()))[5]

    assert held.required and all(c.ok for c in held.cells.values())
    assert held.cells["orchestration"].text == (
        "8 of 8 cells: invariants held, version 2's own 2 sagas ended right"
    )
    assert held.finding == (
        "In every cell of both styles no invariant was violated and version 2's own sagas"
        " ended right."
    )
    broken = versioning_document(
        {
            ("patched", "swap"): Seen(violated=("money_conserved",)),
            ("strict", "rolling"): Seen(fresh_right=False),
        }
    )

    page = build_page(evidence(tmp_path, broken), dimensions=(Change(),))

    failed = page.rows[5]
    assert failed.cells["orchestration"].ok is False
    assert failed.cells["orchestration"].text == (
        "patched swap: invariants violated (money_conserved)"
    )
    assert failed.finding == (
        "Defects: orchestration patched swap: invariants violated (money_conserved);"
        " choreography strict rolling: version 2's own sagas did not all end right."
    )
    assert not page.held


def test_each_cell_links_to_the_swimlanes_of_its_crossing_saga_titled_with_its_figures(
    tmp_path: Path,
) -> None:
    (row, unversioned, *_) = Change().rows(evidence(tmp_path, versioning_document()))

    links = row.cells["choreography"].parts
    assert [link.text for link in links][:3] == ["strict swap", "strict rolling", "tolerant swap"]
    assert links[0].href == LANES["sqlite-none-strict-swap"]
    assert links[1].href == PAGE  # no swimlanes drawn for that cell: the report
    assert links[2].href == LANES["sqlite-patched-tolerant-swap"]
    assert links[2].title == (
        "7/7 right end, 7 recorded as another version; stuck: 0; 0 dead letters;"
        " 0 operator actions; no v1 saga left after: 18.0 s"
    )
    assert [link.text for link in unversioned.cells["orchestration"].parts] == [
        "none swap",
        "none rolling",
    ]


def test_the_page_shows_the_change_rows_with_their_run_and_links(tmp_path: Path) -> None:
    page = build_page(evidence(tmp_path, versioning_document()))

    assert page.dimensions == ["change", "code size"] and page.held
    what, _ = page.runs["versioning"]
    assert "by swap and rolling, 1 saga(s) per position; stuck after 10 s" in what
    html = render_html(page)
    assert html.count('data-dimension="change" data-run="versioning"') == 5
    assert 'data-dimension="change" data-run="code"' in html
    assert f'href="{LANES["sqlite-patched-tolerant-swap"]}"' in html
    markdown = render_markdown(page, base="review-run/")
    assert f"[tolerant swap](review-run/{LANES['sqlite-patched-tolerant-swap']})" in markdown
    assert "**change**: Without versioning (none, strict), a swap leaves" in markdown


async def test_a_matrix_left_out_or_failed_says_so_on_its_change_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    (tmp_path / "a").mkdir()
    _, left = await run.review(ReviewPlan(), settings, tmp_path, tmp_path / "a", print, parts=())

    assert left.absent["change"] == "left out of this review (--skip versioning)"
    assert "change" not in left.dimensions and left.held
    html = _read(tmp_path / "a" / "review.html")
    assert (
        '<tr class="absent" data-dimension="change"><td colspan="3">left out of this review'
        " (--skip versioning)</td></tr>" in html
    )
    assert "| **change**: left out of this review (--skip versioning) | - | - | - |" in _read(
        tmp_path / "a" / "review.md"
    )

    async def fails(inputs: run.Inputs, found: Evidence) -> None:
        raise ServerError("the supervisor did not start")

    part = run.Part("versioning", "the versioning matrix", fails, ("change",))
    monkeypatch.setattr(run, "PARTS", (part,))
    (tmp_path / "b").mkdir()
    _, failed = await run.review(
        ReviewPlan(), settings, tmp_path, tmp_path / "b", print, parts=("versioning",)
    )

    why = "the versioning matrix did not finish (the supervisor did not start)"
    assert failed.problems == [why]
    assert failed.absent["change"] == f"not run: {why}"
    assert not failed.held and failed.order == ["change", "code size"]
    assert "not run: the versioning matrix did not finish" in _read(tmp_path / "b" / "review.md")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
