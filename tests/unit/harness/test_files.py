"""Report folders: unique per run, refused when unusable, and gone again when refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.files import first_missing, prepare_folder, unique_folder
from shared.validation import InvalidInput


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    first, created = unique_folder(tmp_path / "reports", "demo-20260101-120000", "x", "fix")
    second, _ = unique_folder(tmp_path / "reports", "demo-20260101-120000", "x", "fix")

    assert first != second
    assert first.is_dir() and second.is_dir()
    assert second.name == "demo-20260101-120000-2"
    assert created == tmp_path / "reports"


def test_a_folder_that_exists_already_is_not_counted_as_created(tmp_path: Path) -> None:
    assert prepare_folder(tmp_path, "--report-dir", "fix") is None
    assert prepare_folder(tmp_path / "a" / "b", "--report-dir", "fix") == tmp_path / "a"


def test_a_file_in_the_way_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")

    with pytest.raises(InvalidInput, match=r"^--report-dir .*taken is a file, not a folder; fix$"):
        prepare_folder(tmp_path / "taken", "--report-dir", "fix")


def test_a_folder_below_a_file_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")

    with pytest.raises(InvalidInput, match=r"file/below cannot be written \(Not a directory\)"):
        prepare_folder(tmp_path / "file" / "below", "--report-dir", "fix")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_first_missing_names_the_outermost_folder_to_create(tmp_path: Path) -> None:
    assert first_missing(tmp_path / "a" / "b" / "c") == tmp_path / "a"
    assert first_missing(tmp_path) is None
