"""Time axes: round ticks that cover the longest saga, labels a reader can use."""

from __future__ import annotations

from harness.report.axis import LinearAxis, LogAxis, time_label


def test_ticks_are_round_and_the_last_one_covers_the_longest_saga() -> None:
    axis = LinearAxis.covering(443, width=600)

    assert [t.label for t in axis.ticks()] == [
        "0 ms",
        "100 ms",
        "200 ms",
        "300 ms",
        "400 ms",
        "500 ms",
    ]
    assert axis.x(500) == 600
    assert axis.x(250) == 300


def test_times_past_the_axis_are_held_at_its_end() -> None:
    axis = LinearAxis.covering(40, width=400)

    assert axis.top == 40
    assert axis.x(90) == 400
    assert axis.x(-5) == 0


def test_labels_switch_to_seconds_from_a_second_on() -> None:
    assert [time_label(v) for v in (2.5, 250, 1000, 1500)] == ["2.5 ms", "250 ms", "1 s", "1.5 s"]


def test_a_log_axis_ticks_each_decade() -> None:
    axis = LogAxis.covering(13, 4576, width=300)

    assert [t.label for t in axis.ticks()] == ["10 ms", "100 ms", "1 s", "10 s"]
    assert axis.x(100) == 100
