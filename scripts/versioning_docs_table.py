"""The table docs/versioning.md quotes for one run, straight from the run's versioning.json.

    .venv/bin/python scripts/versioning_docs_table.py docs/versioning-run/sqlite/versioning.json

The run's own versioning.md has every column (and links to the swimlanes relative to its
folder); this keeps the ones the page compares, in the page's order of arms, and checks that
the run had no invariant violation and that every version-2 saga ended right (those columns
are left out because they are all "none" and "3/3").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ORDER = {
    "none": 0,
    "strict": 0,
    "patched": 1,
    "tolerant": 1,
    "pinned": 2,
    "dual-publish": 2,
    "auto-upgrade": 3,
    "stored-upcast": 3,
}
HEAD = (
    "| strategy | style | arm | right end | recorded as another version | stuck | dead letters "
    "| operator actions | no v1 saga left after |\n|---|---|---|---:|---:|---|---:|---:|---:|"
)


def row(cell: dict[str, Any], result: dict[str, Any]) -> str:
    assert not result["invariants_violated"], (cell["strategy"], result["arm"])
    assert all(f["right"] for f in result["fresh"]), (cell["strategy"], result["arm"])
    stuck = ", ".join(f"{n} {cause}" for cause, n in result["stuck"].items()) or "0"
    actions = sum(action["times"] for action in result["operator_actions"])
    gone = result["v1_gone_s"]
    return (
        f"| {cell['strategy']} | {result['variant']} | {result['arm']} "
        f"| {result['right']}/{len(result['sagas'])} | {result['misrecorded']} | {stuck} "
        f"| {result['dead_letters']} | {actions} | {'never' if gone is None else f'{gone:.0f} s'} |"
    )


def main() -> None:
    doc = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    pairs = [(item["cell"], result) for item in doc["cells"] for result in item["cell"]["variants"]]
    pairs.sort(
        key=lambda p: (
            ORDER[p[1]["arm"]],
            p[0]["strategy"] != "swap",
            p[1]["variant"] != "orchestration",
        )
    )
    print("\n".join([HEAD, *(row(cell, result) for cell, result in pairs)]))


if __name__ == "__main__":
    main()
