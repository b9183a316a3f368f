"""The review page is built from dimension providers: only dimensions with evidence get rows."""

from __future__ import annotations

from pathlib import Path

from harness.compare.conditions import gather
from harness.review.code_size import Module, PackageSize, code_lines, sizes
from harness.review.dimensions import DIMENSIONS, Cell, Row
from harness.review.gather import Evidence
from harness.review.page import build_page, render_html, render_markdown
from shared.definitions import ORDERS_V1


def code_only(tmp_path: Path) -> Evidence:
    found = {
        "orchestration": PackageSize("orchestration", (Module("orchestration/a.py", 100),)),
        "choreography": PackageSize("choreography", (Module("choreography/a.py", 250),)),
        "shared": PackageSize("shared", (Module("shared/a.py", 300),)),
    }
    return Evidence(tmp_path, ORDERS_V1, found, gather(store="-", definition="-", activities="-"))


def test_a_review_with_only_the_code_shows_only_the_code_size_row(tmp_path: Path) -> None:
    page = build_page(code_only(tmp_path))

    assert page.dimensions == ["code size"]
    (row,) = page.rows
    assert row.cells["choreography"].text == "250 lines in 1 modules"
    assert "2.5x the code" in row.finding
    html = render_html(page)
    assert "correctness" not in html and "isolation" not in html
    assert page.held


class Isolation:
    """A dimension added later: one more provider, nothing else changes."""

    name = "isolation"

    def rows(self, evidence: Evidence) -> list[Row]:
        cell = Cell("no lost update", True, "anomalies/report.html")
        return [
            Row(
                "isolation",
                "concurrent sagas on one account",
                {"orchestration": cell, "choreography": cell},
                "code",
                "No anomaly in either style.",
                required=True,
            )
        ]


def test_a_new_dimension_is_one_more_provider(tmp_path: Path) -> None:
    page = build_page(code_only(tmp_path), dimensions=(*DIMENSIONS, Isolation()))

    assert page.dimensions == ["code size", "isolation"]
    assert "[no lost update](review-run/anomalies/report.html) (yes)" in render_markdown(
        page, base="review-run/"
    )


def test_a_required_row_that_fails_fails_the_review_and_a_missed_target_does_not(
    tmp_path: Path,
) -> None:
    failing = Cell("1 lost", False, "chaos/chaos.md")
    missed = Cell("0.2x its floor", False, "bench/bench.md")

    def row(required: bool, cell: Cell) -> Row:
        return Row("x", "q", {"orchestration": cell, "choreography": cell}, "code", "f", required)

    class Rows:
        name = "x"

        def __init__(self, rows: list[Row]) -> None:
            self._rows = rows

        def rows(self, evidence: Evidence) -> list[Row]:
            return self._rows

    assert build_page(code_only(tmp_path), dimensions=(Rows([row(False, missed)]),)).held
    assert not build_page(code_only(tmp_path), dimensions=(Rows([row(True, failing)]),)).held


def test_code_lines_leave_out_blank_lines_and_comments(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Doc."""\n\n# a comment\nx = 1  # counted\n\n', encoding="utf-8")

    assert code_lines(module) == 2
    found = sizes()
    assert found["choreography"].lines > 0 and found["orchestration"].lines > 0
