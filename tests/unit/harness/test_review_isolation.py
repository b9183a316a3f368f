"""The review's isolation row, read from an anomaly lab document built here: per style, how many
anomalies appear with their countermeasure off, how many are prevented with it on, which cannot
happen; the finding says where the styles differ; each cell links to the lab's cells."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from harness.anomalies.kinds import Anomaly, Finding
from harness.anomalies.matrix import LabDocument, LabPlan, Machine, Switches, matrix_cells
from harness.anomalies.report import anchor
from harness.anomalies.results import CellRun, SagaEnd
from harness.compare.conditions import RunConditions, gather
from harness.review import run
from harness.review.code_size import Module, PackageSize
from harness.review.dimensions import Isolation
from harness.review.gather import Evidence, LabEvidence, ReviewPlan
from harness.review.page import build_page, render_html, render_markdown
from harness.session import VARIANTS
from shared.contracts import SagaOutcome, SagaStatus
from shared.definitions import ORDERS_V1
from shared.servers import ServerError
from shared.settings import Settings

PAGE = "anomalies/anomalies.html"
Seen = Callable[[CellRun], tuple[bool, bool]]
"""A cell -> (found in the history, found by the invariants)."""


def as_the_lab_finds(cell: CellRun) -> tuple[bool, bool]:
    return cell.expected, cell.expected


def lab_document(seen: Seen = as_the_lab_finds, anomalies: tuple[Anomaly, ...] = ()) -> LabDocument:
    """Every cell of the matrix, in both styles, found as ``seen`` says."""
    plan = LabPlan(anomalies or tuple(Anomaly), Switches.both, VARIANTS)
    matrix = []
    for scenario, setting in matrix_cells(plan):
        for variant in VARIANTS:
            off = setting is scenario.off
            blank = CellRun(
                anomaly=scenario.anomaly,
                variant=variant,
                setting=setting.name,
                countermeasures=setting.countermeasures.text,
                definition=setting.definition,
                off=off,
                expected=off and variant in scenario.occurs_in,
                sagas=[_end("A"), _end("B")],
                by_history=[],
                by_invariants=[],
                seconds=0.1,
            )
            history, invariants = seen(blank)
            found = [Finding.of(scenario.anomaly, {"saga-A", "saga-B"}, "forced")]
            matrix.append(
                blank.model_copy(
                    update={
                        "by_history": found if history else [],
                        "by_invariants": found if invariants else [],
                    }
                )
            )
    return LabDocument(
        command="saga-compare anomalies --countermeasures both (run by saga-compare review)",
        seed=7,
        stress_sagas=0,
        started_at=0.0,
        seconds=40.0,
        machine=Machine(cpus=2, load_before=(1.0, 1.0, 1.0)),
        matrix=matrix,
        stress=[],
    )


def _end(letter: str) -> SagaEnd:
    outcome = SagaOutcome(saga_id=f"saga-{letter}", order_id=letter, status=SagaStatus.COMPLETED)
    return SagaEnd.of(letter, f"saga-{letter}", outcome, "0" * 32)


def evidence(tmp_path: Path, doc: LabDocument | None) -> Evidence:
    code = {
        "orchestration": PackageSize("orchestration", (Module("orchestration/a.py", 100),)),
        "choreography": PackageSize("choreography", (Module("choreography/a.py", 250),)),
    }
    found = Evidence(tmp_path, ORDERS_V1, code, conditions())
    if doc is not None:
        found.anomalies = LabEvidence(tmp_path / "anomalies", doc, conditions(), PAGE)
    return found


@cache
def conditions() -> RunConditions:
    """Taken once: each taking asks git and the servers for their versions."""
    return gather(store="sqlite", definition="v1, pessimistic")


def test_each_style_shows_what_appears_off_what_is_prevented_on_and_what_cannot_happen(
    tmp_path: Path,
) -> None:
    (row,) = Isolation().rows(evidence(tmp_path, lab_document()))

    orchestrated, choreographed = row.cells["orchestration"], row.cells["choreography"]
    assert orchestrated.text == (
        "3 of 5 appear with their countermeasure off; 3 of 3 prevented with it on;"
        " cannot happen here: cancel_overwritten, early_compensation"
    )
    assert choreographed.text == (
        "5 of 5 appear with their countermeasure off; 5 of 5 prevented with it on"
    )
    assert orchestrated.ok is True and choreographed.ok is True and row.required
    assert row.run == "anomalies" and orchestrated.href == f"{PAGE}#matrix"
    assert row.finding == (
        "With their countermeasure off, 3 of the 5 anomalies appear in both styles and 2 appear"
        " only in the choreography (cancel_overwritten, early_compensation: they cannot happen"
        " in the orchestration); with it on, none appears in either style."
    )


def test_each_anomaly_links_to_its_cells_in_the_lab_report_titled_with_their_verdicts(
    tmp_path: Path,
) -> None:
    doc = lab_document()
    (row,) = Isolation().rows(evidence(tmp_path, doc))

    links = row.cells["orchestration"].parts
    first_off = [
        next(c for c in doc.matrix if c.anomaly is a and c.variant == "orchestration" and c.off)
        for a in Anomaly
    ]
    assert [link.href for link in links] == [f"{PAGE}#{anchor(c)}" for c in first_off]
    assert links[0].href == f"{PAGE}#cell-lost-update-commutative-updates-off-orchestration"
    assert [link.text for link in links][:2] == ["1 lost_update", "2 dirty_read"]
    assert links[3].title == "order_lock off: cannot happen; order_lock on: prevented"
    assert links[1].title == (
        "points_lock off: observed (A, B); points_lock on: prevented; pessimistic view: prevented"
    )


def test_an_anomaly_with_its_countermeasure_on_or_not_forced_fails_the_row_and_the_review(
    tmp_path: Path,
) -> None:
    def leaky(cell: CellRun) -> tuple[bool, bool]:
        if cell.variant == "orchestration" and cell.anomaly is Anomaly.FUZZY_READ and not cell.off:
            return cell.setting == "reread_value on", cell.setting == "reread_value on"
        if cell.variant == "choreography" and cell.anomaly is Anomaly.LOST_UPDATE:
            return False, cell.off  # the invariant sees it, the history does not
        return as_the_lab_finds(cell)

    page = build_page(evidence(tmp_path, lab_document(leaky)), dimensions=(Isolation(),))

    (row,) = page.rows
    assert row.cells["orchestration"].text == (
        "3 of 5 appear with their countermeasure off; 2 of 3 prevented with it on;"
        " cannot happen here: cancel_overwritten, early_compensation;"
        " STILL appear with it on: fuzzy_read"
    )
    assert row.cells["choreography"].text == (
        "4 of 5 appear with their countermeasure off; 5 of 5 prevented with it on;"
        " NOT forced with it off: lost_update; history and invariants DISAGREE in 1 cell"
    )
    assert row.cells["orchestration"].ok is False and row.cells["choreography"].ok is False
    assert row.finding == (
        "With their countermeasure off, 2 of the 5 anomalies appear in both styles,"
        " 1 appears only in the orchestration (lost_update) and 2 appear only in the"
        " choreography (cancel_overwritten, early_compensation: they cannot happen in the"
        " orchestration); with it on, fuzzy_read still appears in the orchestration;"
        " the history checker and the invariants disagree in 1 cell."
    )
    assert not page.held


def test_one_anomaly_alone_is_named_in_the_question_and_the_finding(tmp_path: Path) -> None:
    (row,) = Isolation().rows(evidence(tmp_path, lab_document(anomalies=(Anomaly.LOST_UPDATE,))))

    assert row.question.startswith("1 of the 5 anomalies (lost_update) of concurrent sagas")
    assert row.cells["orchestration"].text == (
        "1 of 1 appear with their countermeasure off; 1 of 1 prevented with it on"
    )
    assert row.finding == (
        "With their countermeasure off, lost_update appears in both styles;"
        " with it on, none appears in either style."
    )


def test_the_page_shows_the_row_with_its_run_and_links_to_every_cell(tmp_path: Path) -> None:
    page = build_page(evidence(tmp_path, lab_document()))

    assert page.dimensions == ["isolation", "code size"]
    assert "anomalies" in page.runs and page.held
    html = render_html(page)
    assert 'data-dimension="isolation" data-run="anomalies"' in html
    assert f'href="{PAGE}#cell-early-compensation-version-file-off-choreography"' in html
    markdown = render_markdown(page, base="review-run/")
    assert f"](review-run/{PAGE}#matrix) (yes) ([1 lost_update](review-run/{PAGE}#cell-" in markdown
    assert "**isolation**: With their countermeasure off, 3 of the 5" in markdown


def test_a_review_without_the_lab_has_no_isolation_row(tmp_path: Path) -> None:
    page = build_page(evidence(tmp_path, None))

    assert page.dimensions == ["code size"]
    assert "anomalies" not in page.runs


async def test_a_lab_left_out_or_failed_is_named_on_the_page_and_only_a_failure_fails_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    (tmp_path / "a").mkdir()
    _, left = await run.review(ReviewPlan(), settings, tmp_path, tmp_path / "a", print, parts=())

    assert "the anomaly lab (--skip anomalies)" in left.left_out and left.held
    assert "Left out of this review:</b> the catalogue (--skip catalogue);" in _html(tmp_path / "a")
    assert "**Left out of this review:** the catalogue (--skip catalogue);" in _md(tmp_path / "a")

    async def fails(inputs: run.Inputs, found: Evidence) -> None:
        raise ServerError("temporal did not start")

    monkeypatch.setattr(run, "PARTS", (run.Part("anomalies", "the anomaly lab", fails),))
    (tmp_path / "b").mkdir()
    _, failed = await run.review(
        ReviewPlan(), settings, tmp_path, tmp_path / "b", print, parts=("anomalies",)
    )

    assert failed.problems == ["the anomaly lab did not finish (temporal did not start)"]
    assert not failed.held and "isolation" not in failed.dimensions
    assert "Not everything ran:</b> the anomaly lab did not finish" in _html(tmp_path / "b")
    assert "**Not everything ran:** the anomaly lab did not finish" in _md(tmp_path / "b")


def _html(folder: Path) -> str:
    return (folder / "review.html").read_text(encoding="utf-8")


def _md(folder: Path) -> str:
    return (folder / "review.md").read_text(encoding="utf-8")
