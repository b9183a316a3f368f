"""The lines of version 2's change per style, counted from the versioning branch's own commits.

    .venv/bin/python scripts/versioning_lines.py --base 514617e --head <commit>

Sums ``git log --first-parent --no-merges --numstat BASE..HEAD`` over the production packages
(``shared/`` — the definition and the services both styles run —, ``orchestration/``,
``choreography/``): the commits that made version 2 and the versioning arms, without the merges
of main into the branch. Docstrings and comments count (they are part of the change a team
writes); tests, the harness, the monitor's templates and docs do not. ``HEAD`` must be a commit
of the branch itself: after the branch is merged, main's first parents are main's commits.
Prints a Markdown table per package, then the totals (docs/versioning.md quotes it).
"""

from __future__ import annotations

import argparse
import subprocess
from collections import defaultdict

PACKAGES = {
    "shared": "shared (both styles: definition, services, settings, store)",
    "orchestration": "orchestration",
    "choreography": "choreography",
}


def numstat(base: str, head: str) -> dict[str, tuple[int, int]]:
    """Lines added and removed per file by the branch's own commits."""
    out = subprocess.run(
        ["git", "log", "--first-parent", "--no-merges", "--numstat", "--format=",
         f"{base}..{head}", "--", *PACKAGES],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in out.splitlines():
        if not line.strip():
            continue
        added, removed, path = line.split("\t")
        found[path][0] += int(added)
        found[path][1] += int(removed)
    return {path: (a, r) for path, (a, r) in sorted(found.items())}


def table(files: dict[str, tuple[int, int]]) -> list[str]:
    lines = ["| style | file | added | removed |", "|---|---|---:|---:|"]
    totals = []
    for package, title in PACKAGES.items():
        mine = {p: n for p, n in files.items() if p.split("/")[0] == package}
        for path, (added, removed) in mine.items():
            lines.append(f"| {title} | `{path}` | {added} | {removed} |")
        added = sum(a for a, _ in mine.values())
        removed = sum(r for _, r in mine.values())
        totals.append(f"| {title} | {len(mine)} files | {added} | {removed} |")
    return [*lines, "", "| style | files | added | removed |", "|---|---|---:|---:|", *totals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit the branch started from")
    parser.add_argument("--head", required=True, help="a commit of the branch")
    args = parser.parse_args()
    print("\n".join(table(numstat(args.base, args.head))))


if __name__ == "__main__":
    main()
