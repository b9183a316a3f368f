"""scripts/window_probe.py: a run watched from outside, window by window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[4] / "scripts" / "window_probe.py"


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    """The script run as its users run it, with these arguments."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def sample(t: float, user: float, reads: int, broker: float, db_bytes: int) -> str:
    return json.dumps(
        {
            "t": t,
            "cpu": [user, 0.5 * t],
            "io": {"syscr": reads, "syscw": 2 * reads},
            "children": {"nats-server:42": [broker, 0.0]},
            "sqlite": {"/s/orders.db": db_bytes, "/s/orders.db-wal": 1_000_000},
        }
    )


def test_the_summary_gives_each_window_its_rates(tmp_path: Path) -> None:
    windows = tmp_path / "windows.jsonl"
    lines = [
        sample(0.0, 0.0, 0, 0.0, 0),
        sample(30.0, 6.0, 3_000, 1.5, 10_000_000),
        sample(60.0, 12.0, 6_000, 3.0, 20_000_000),
        sample(120.0, 36.0, 18_000, 9.0, 40_000_000),
    ]
    windows.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = probe("--summary-of", str(windows), "60").stdout.splitlines()
    assert len(table) == 4  # header, rule, 0-60, 60-120
    assert table[2] == "| 0-60 | 700 (200 + 500) | nats-server 50 | 100 | 200 | 21.0 |"
    assert table[3] == "| 60-120 | 900 (400 + 500) | nats-server 100 | 200 | 400 | 41.0 |"


def test_it_watches_a_command_to_its_end_and_keeps_its_exit_code(tmp_path: Path) -> None:
    busy = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}]); sys.exit(3)"
    done = probe("--out", str(tmp_path), "--every", "0.05", "--", sys.executable, "-c", child)
    assert done.returncode == 3, done.stderr
    samples = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert len(samples) >= 2
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
    busiest = max(sum(cpu) for s in samples for cpu in s["children"].values() if cpu)
    assert busiest >= 0.1  # the grandchild's busy loop, seen while it ran


def test_a_missing_command_is_refused_in_one_line(tmp_path: Path) -> None:
    done = probe("--out", str(tmp_path))
    assert done.returncode == 2
    assert "the command to watch is missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_window_that_is_not_start_end_is_refused_in_one_line(tmp_path: Path) -> None:
    done = probe("--out", str(tmp_path), "--profile", "60-180", "--", "true")
    assert done.returncode == 2
    assert "--profile 60-180: give START:END in seconds" in done.stderr
    assert not (tmp_path / "windows.jsonl").exists()  # nothing was started


def test_a_summary_of_nothing_is_refused_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "windows.jsonl"
    empty.write_text("", encoding="utf-8")
    done = probe("--summary-of", str(empty))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "fewer than two samples" in done.stderr
