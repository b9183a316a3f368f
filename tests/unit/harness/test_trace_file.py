"""A malformed trace file is one ``TraceFileError`` naming the line and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.trace_file import TraceFileError
from harness.report.traces import load_traces
from tests.unit.harness.trace_support import TraceBuilder, root


def good_line() -> str:
    trace = TraceBuilder()
    root(trace, "orchestration", "o-1", 10)
    return trace.line()


def file_with(tmp_path: Path, second_line: str | bytes) -> Path:
    """A file whose first line is a valid saga trace and whose second line is given."""
    path = tmp_path / "traces.jsonl"
    second = second_line if isinstance(second_line, bytes) else second_line.encode()
    path.write_bytes(good_line().encode() + b"\n" + second + b"\n")
    return path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"resourceSpans": [', "line 2: not JSON"),
        ("[1, 2, 3]", "line 2: a JSON array, not an OTLP TracesData object"),
        ('{"resourceSpans": 5}', "line 2: resourceSpans is a number, not a list"),
        ('{"spans": []}', "line 2: no resourceSpans"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "spanId": "'
            + "a" * 16
            + '"}]}]}]}',
            "line 2: span 'x' has no traceId",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "traceId": "'
            + "b" * 32
            + '"}]}]}]}',
            "line 2: span 'x' has no spanId",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", '
            '"traceId": "CvdlGRbNQ92ESOshHIAxnA==", "spanId": "' + "a" * 16 + '"}]}]}]}',
            "is not 32 hex digits (base64 ids?)",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "traceId": "'
            + "b" * 32
            + '", "spanId": "'
            + "a" * 16
            + '", "startTimeUnixNano": "soon"}]}]}]}',
            "line 2: span 'x' start time 'soon' is not an integer",
        ),
    ],
    ids=[
        "not-json",
        "json-array",
        "resource-spans-number",
        "no-resource-spans",
        "no-trace-id",
        "no-span-id",
        "base64-ids",
        "bad-time",
    ],
)
def test_a_malformed_line_is_refused_naming_its_number_and_problem(
    tmp_path: Path, line: str, problem: str
) -> None:
    with pytest.raises(TraceFileError) as caught:
        load_traces(file_with(tmp_path, line))

    message = str(caught.value)
    assert problem in message
    assert "\n" not in message
    assert caught.value.line == 2


def test_binary_garbage_is_refused_as_not_text(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match=r"^line 2: not UTF-8 text"):
        load_traces(file_with(tmp_path, bytes(range(128, 256))))


def test_a_trace_file_error_is_a_value_error_for_callers_that_catch_those(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 2"):
        load_traces(file_with(tmp_path, "nonsense"))


def test_blank_lines_and_empty_batches_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text("\n" + good_line() + "\n\n" + '{"resourceSpans": []}\n', encoding="utf-8")

    assert [s.order_id for s in load_traces(path)] == ["o-1"]
