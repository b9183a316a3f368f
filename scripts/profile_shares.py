"""Shares of CPU by category in py-spy raw stacks (``scripts/profile_bench.py --out``), read
with this tree's categories (harness/bench/profile.py), several files pooled per label.

    .venv/bin/python scripts/profile_shares.py before=a-traced-1.txt.gz,a-traced-2.txt.gz \\
        after=c-traced-1.txt.gz,c-traced-2.txt.gz

Prints one table: a row per category, a column per label (its share of the working samples),
and the number of working samples each label pooled. Files may be gzipped. ``--by-file
temporalio/`` prints a second table: the working samples whose innermost frame in a file
under that prefix is in each such file (where inside a library the time goes); ``--frame
"Tracer.start_span ("`` (repeatable) prints the share of working samples with that frame
anywhere on their stack (inclusive: a frame's callees count).
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import Counter
from pathlib import Path

from harness.bench.profile import idle, read_profile


def lines(path: Path) -> list[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as packed:
            return packed.readlines()
    return path.read_text(encoding="utf-8").splitlines()


def by_file(raw: list[str], prefix: str) -> Counter[str]:
    """Working samples by the file of their innermost frame under ``prefix``."""
    found: Counter[str] = Counter()
    pattern = re.compile(r"\((" + re.escape(prefix) + r"[^:]*)")
    for line in raw:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit() or idle(stack):
            continue
        files = pattern.findall(stack)
        if files:
            found[files[-1]] += int(number)
    return found


def with_frames(raw: list[str], frames: list[str]) -> Counter[str]:
    """Working samples with each of ``frames`` anywhere on their stack."""
    found: Counter[str] = Counter()
    for line in raw:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit() or idle(stack):
            continue
        for frame in frames:
            if frame in stack:
                found[frame] += int(number)
    return found


def table(pooled: dict[str, Counter[str]], totals: dict[str, int], title: str) -> None:
    rows = sorted(
        {row for counts in pooled.values() for row in counts},
        key=lambda row: -sum(pooled[label][row] / max(1, totals[label]) for label in pooled),
    )
    print(f"| {title} | " + " | ".join(pooled) + " |")
    print("|---|" + "---|" * len(pooled))
    for row in rows:
        shares = [pooled[label][row] / max(1, totals[label]) for label in pooled]
        print(f"| {row} | " + " | ".join(f"{share:.1%}" for share in shares) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=FILE[,FILE...]")
    parser.add_argument("--by-file", metavar="PREFIX", help="also split by file under PREFIX")
    parser.add_argument("--frame", action="append", default=[], help="inclusive share of a frame")
    args = parser.parse_args()
    pooled: dict[str, Counter[str]] = {}
    files: dict[str, Counter[str]] = {}
    frames: dict[str, Counter[str]] = {}
    for argument in args.runs:
        label, _, names = argument.partition("=")
        if not names:
            parser.error(f"{argument!r}: LABEL=FILE[,FILE...]")
        counts: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        framed: Counter[str] = Counter()
        for name in names.split(","):
            raw = lines(Path(name))
            counts.update(read_profile(raw).by_category)
            if args.by_file:
                inside.update(by_file(raw, args.by_file))
            framed.update(with_frames(raw, args.frame))
        pooled[label], files[label], frames[label] = counts, inside, framed
    totals = {label: sum(counts.values()) for label, counts in pooled.items()}
    table(pooled, totals, "where the CPU goes")
    print("| working samples | " + " | ".join(str(totals[label]) for label in pooled) + " |")
    if args.by_file:
        print()
        table(files, totals, f"innermost file under {args.by_file} (share of all working samples)")
    if args.frame:
        print()
        table(frames, totals, "samples with this frame on the stack (inclusive)")


if __name__ == "__main__":
    main()
