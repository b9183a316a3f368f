"""The size of each style's code: lines that are neither blank nor only a comment, per module.

What each style needed on top of what both share (``shared/``: the domain, the spec, the
stores, the faults, tracing): the choreography's participants, bus, outbox, inbox, tracker and
front door; the orchestration's workflow, activities, worker and client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]
PACKAGES = {"orchestration": "orchestration", "choreography": "choreography", "shared": "shared"}


@dataclass(frozen=True)
class Module:
    path: str
    lines: int


@dataclass(frozen=True)
class PackageSize:
    package: str
    modules: tuple[Module, ...]

    @property
    def lines(self) -> int:
        return sum(m.lines for m in self.modules)


def code_lines(path: Path) -> int:
    """Lines that are neither blank nor a comment (docstrings count: they are the code's)."""
    text = path.read_text(encoding="utf-8")
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def package_size(package: str, root: Path = SOURCE) -> PackageSize:
    folder = root / package
    modules = tuple(
        Module(str(path.relative_to(root)), code_lines(path))
        for path in sorted(folder.rglob("*.py"))
    )
    return PackageSize(package, modules)


def sizes(root: Path = SOURCE) -> dict[str, PackageSize]:
    """Each style's package and the shared one."""
    return {name: package_size(package, root) for name, package in PACKAGES.items()}


def markdown(found: dict[str, PackageSize], commit: str) -> str:
    """The evidence: every module with its lines, per package."""
    lines = [
        "# Code size per style",
        "",
        f"Lines that are neither blank nor only a comment (docstrings count), at commit {commit}.",
        "",
    ]
    for name, size in found.items():
        lines += [f"## {name}: {size.lines:,} lines in {len(size.modules)} modules", ""]
        lines += ["| module | lines |", "|---|---|"]
        lines += [f"| `{m.path}` | {m.lines:,} |" for m in size.modules]
        lines.append("")
    return "\n".join(lines)
