"""Errors a user causes end as one stderr line and exit 2, a refused duplicate order included."""

from __future__ import annotations

import pytest
import typer

from harness.cli.guard import user_errors
from shared.errors import DuplicateOrder


def test_a_refused_duplicate_order_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as ended, user_errors():
        raise DuplicateOrder("o-1", "saga-a")

    assert ended.value.exit_code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: order_id: order 'o-1' is placed already (saga saga-a)"]
