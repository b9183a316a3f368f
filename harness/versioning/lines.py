"""The lines of version 2's change per style, counted from the versioning branch's own commits.

Sums ``git log --first-parent --no-merges --numstat BASE..HEAD`` over the production packages
(``shared/`` — the definition and the services both styles run —, ``orchestration/``,
``choreography/``): the commits that made version 2 and the versioning arms, without the merges
of main into the branch. Docstrings and comments count (they are part of the change a team
writes); tests, the harness, the monitor's templates and docs do not. ``HEAD`` must be a commit
of the branch itself: after the branch is merged, main's first parents are main's commits.

``scripts/versioning_lines.py`` prints it for docs/versioning.md; the review's change row
counts the same range (`BASE`, `HEAD`).
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGES = {
    "shared": "shared (both styles: definition, services, settings, store)",
    "orchestration": "orchestration",
    "choreography": "choreography",
}
SOURCE = Path(__file__).resolve().parents[2]
BASE = "514617e477f840bfbbd92b21b05c6b24a4ac5048"
"""Where the versioning branch started (docs/versioning.md)."""
HEAD = "1cd95650840bb7dd88204aa07db6528464c08067"
"""The branch's commit of its SQLite run, the last before main was merged into it again."""


@dataclass(frozen=True)
class PackageChange:
    """What the change added and removed in one package."""

    package: str
    files: int
    added: int
    removed: int


def numstat(base: str, head: str, root: Path = SOURCE) -> dict[str, tuple[int, int]]:
    """Lines added and removed per file by the branch's own commits (git must know both)."""
    out = subprocess.run(
        ["git", "-C", str(root), "log", "--first-parent", "--no-merges", "--numstat",
         "--format=", f"{base}..{head}", "--", *PACKAGES],
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


def per_package(files: dict[str, tuple[int, int]]) -> dict[str, PackageChange]:
    """The files' lines summed per package, in `PACKAGES`' order."""
    found = {}
    for package in PACKAGES:
        mine = [n for p, n in files.items() if p.split("/")[0] == package]
        added = sum(a for a, _ in mine)
        removed = sum(r for _, r in mine)
        found[package] = PackageChange(package, len(mine), added, removed)
    return found


def table(files: dict[str, tuple[int, int]]) -> list[str]:
    """Markdown: every file with its lines, then the totals per package."""
    lines = ["| style | file | added | removed |", "|---|---|---:|---:|"]
    for package, title in PACKAGES.items():
        mine = {p: n for p, n in files.items() if p.split("/")[0] == package}
        for path, (added, removed) in mine.items():
            lines.append(f"| {title} | `{path}` | {added} | {removed} |")
    totals = [
        f"| {PACKAGES[c.package]} | {c.files} files | {c.added} | {c.removed} |"
        for c in per_package(files).values()
    ]
    return [*lines, "", "| style | files | added | removed |", "|---|---|---:|---:|", *totals]
