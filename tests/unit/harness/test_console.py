"""Tables never cut a word: they wrap one column, or become records when even that is too wide."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.cli.console import Rows, print_table

LONG = "compensation_never_succeeds"
OUTCOME = "15x COMPENSATED out_of_stock, 5x COMPLETED"


def render(rows: Rows, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)
    print_table(console, rows)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def summary() -> Rows:
    rows = Rows(["scenario", "outcome", "orch. ms", "chor. ms", "same", "invariants"], wrap=1)
    rows.add(LONG, "NEEDS_INTERVENTION shipment_failed", "766", "514", "[green]yes", "hold")
    rows.add("race_for_last_items", OUTCOME, "4,427", "1,091", "yes", "hold")
    return rows


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_no_cell_is_ever_cut_whatever_the_width(width: int) -> None:
    output = render(summary(), width)

    assert "…" not in output
    words = output.split()
    for word in [LONG, "NEEDS_INTERVENTION", "shipment_failed", "out_of_stock,", "4,427"]:
        assert word in words


def test_a_table_that_fits_when_its_outcome_wraps_stays_a_table() -> None:
    output = render(summary(), 100)

    assert output.splitlines()[0].split() == [
        "scenario",
        "outcome",
        "orch.",
        "ms",
        "chor.",
        "ms",
        "same",
        "invariants",
    ]


def test_at_80_columns_each_row_becomes_a_record_with_its_values_named() -> None:
    lines = render(summary(), 80).splitlines()

    assert lines[0] == LONG
    assert lines[1].strip().startswith("outcome: NEEDS_INTERVENTION shipment_failed")
    assert f"outcome: {OUTCOME}" in "\n".join(lines)
    assert all(len(line) <= 80 for line in lines)


def test_the_bench_table_keeps_every_number_at_80_columns() -> None:
    rows = Rows(
        ["variant", "run", "sagas/s", "p50 ms", "p95 ms", "p99 ms", "CPU s", "peak MB"],
        title="benchmark",
    )
    rows.add("orchestration", "bare engine", "35.2", "1234.5", "2345.6", "3456.7", "12.3", "187")
    rows.add("choreography", "untraced", "151.0", "98.1", "150.2", "201.3", "4.1", "95")

    output = render(rows, 80)

    assert "…" not in output
    for value in ["orchestration", "bare engine", "1234.5", "3456.7", "187", "201.3"]:
        assert value in output
