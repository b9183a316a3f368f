"""Watch one benchmark run from outside, window by window: CPU, read syscalls and profiles.

    .venv/bin/python scripts/window_probe.py --out DIR --profile 120:240 --profile 420:540 -- \\
        .venv/bin/saga-compare bench --store sqlite --variant choreography --rate 30 \\
        --duration 600 --no-cold-start --report-dir DIR/bench

It starts the command (a ``saga-compare bench`` whose sagas run inside its own process) and,
every ``--every`` seconds until it exits, appends to ``DIR/windows.jsonl`` one line per
sample: the command's process's CPU seconds (user, system), its read and write system calls
and bytes read from storage (``/proc/PID/io``), the CPU of each of its child processes (the
broker, the servers) and the size of every SQLite file it holds open with its WAL. For each
``--profile START:END`` (seconds from the start) it samples the process with py-spy for that
window (``--nonblocking``, the thread holding the interpreter's lock, raw stacks into
``DIR/profile-START-END.txt``) so that two windows of one run can be compared with
``scripts/profile_shares.py``. ``--summary-of DIR/windows.jsonl [SECONDS]`` prints the
samples as a table, a row per 60 (or SECONDS) seconds. Times are from the command's start (a
bench's run begins after its start-up, calibration and warm-up). The samples are differences
to read against each other, not a benchmark: the probe and py-spy take some CPU of their own,
the same in every window.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of ``pid`` (its own threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def io(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return {}
    pairs = (line.split(":") for line in text.splitlines() if ":" in line)
    return {key.strip(): int(value) for key, value in pairs}


def children(pid: int) -> dict[int, str]:
    """Every descendant of ``pid`` by id, with its command's name."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            try:
                found[kid] = Path(f"/proc/{kid}/comm").read_text().strip()
            except OSError:
                continue
            todo.append(kid)
    return found


def sqlite_files(pid: int) -> dict[str, int]:
    """Size in bytes of each SQLite file (and its WAL) ``pid`` holds open."""
    sizes: dict[str, int] = {}
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return sizes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith((".db", ".sqlite", ".db-wal", ".sqlite-wal")):
            try:
                sizes[target] = os.stat(target).st_size
            except OSError:
                continue
    return sizes


def summary(path: Path, width: float) -> str:
    """A table of the samples in ``path``, a row per ``width`` seconds: CPU per second of the
    watched process and of its children by name, read calls per second, SQLite bytes."""
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    samples = [s for s in samples if s["cpu"]]
    if len(samples) < 2:
        raise ValueError(f"{path}: fewer than two samples of the watched process")
    rows = [
        "| window s | process CPU ms/s (user + system) | children CPU ms/s | read calls/s | "
        "write calls/s | SQLite files MB (with WAL) |",
        "|---|---|---|---|---|---|",
    ]
    start = samples[0]
    for sample in samples[1:]:
        if sample["t"] - start["t"] < width - 1e-6 and sample is not samples[-1]:
            continue
        span = sample["t"] - start["t"]
        user = (sample["cpu"][0] - start["cpu"][0]) * 1e3 / span
        system = (sample["cpu"][1] - start["cpu"][1]) * 1e3 / span
        kids = []
        for key, now in sorted(sample["children"].items()):
            before = start["children"].get(key)
            if now and before:
                name = key.partition(":")[0]
                kids.append(f"{name} {(sum(now) - sum(before)) * 1e3 / span:.0f}")
        reads = (sample["io"].get("syscr", 0) - start["io"].get("syscr", 0)) / span
        writes = (sample["io"].get("syscw", 0) - start["io"].get("syscw", 0)) / span
        size = sum(sample["sqlite"].values()) / 1e6
        rows.append(
            f"| {start['t']:.0f}-{sample['t']:.0f} | {user + system:.0f} ({user:.0f} + "
            f"{system:.0f}) | {', '.join(kids)} | {reads:.0f} | {writes:.0f} | {size:.1f} |"
        )
        start = sample
    return "\n".join(rows)


def main() -> int:
    if sys.argv[1:2] == ["--summary-of"]:
        try:
            print(summary(Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 60.0))
        except (IndexError, OSError, ValueError, KeyError) as error:
            print(f"window_probe: --summary-of FILE [SECONDS]: {error}", file=sys.stderr)
            return 2
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--profile", action="append", default=[], help="START:END seconds")
    parser.add_argument("--rate-hz", type=int, default=100)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("the command to watch is missing: add -- saga-compare bench ...")
    windows = []
    for text in args.profile:
        start, _, end = text.partition(":")
        try:
            window = (float(start), float(end))
        except ValueError:
            parser.error(f"--profile {text}: give START:END in seconds, as 60:180")
        if window[1] <= window[0]:
            parser.error(f"--profile {text}: END must come after START")
        windows.append(window)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(command)
    spies: list[subprocess.Popen[bytes]] = []
    pending = sorted(windows)
    with (args.out / "windows.jsonl").open("w", encoding="utf-8") as sink:
        while proc.poll() is None:
            now = time.monotonic() - started
            while pending and pending[0][0] <= now:
                start, end = pending.pop(0)
                name = args.out / f"profile-{start:g}-{end:g}.txt"
                spies.append(
                    subprocess.Popen(
                        [
                            py_spy,
                            "record",
                            "--pid",
                            str(proc.pid),
                            "--duration",
                            f"{end - start:g}",
                            "--rate",
                            str(args.rate_hz),
                            "--nonblocking",
                            "--gil",
                            "--format",
                            "raw",
                            "--output",
                            str(name),
                        ],
                        stdout=subprocess.DEVNULL,
                    )
                )
            own = cpu_s(proc.pid)
            sample = {
                "t": round(now, 2),
                "cpu": own,
                "io": io(proc.pid),
                "children": {
                    f"{comm}:{kid}": cpu_s(kid) for kid, comm in children(proc.pid).items()
                },
                "sqlite": sqlite_files(proc.pid),
            }
            sink.write(json.dumps(sample) + "\n")
            sink.flush()
            deadline = started + (int(now / args.every) + 1) * args.every
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    for spy in spies:
        spy.wait()
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
