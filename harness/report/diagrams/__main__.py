"""``python -m harness.report.diagrams [FOLDER]``: the spec's diagrams (default: docs/diagrams)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.report.diagrams.files import write


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/diagrams")
    for path in write(folder):
        print(path)


if __name__ == "__main__":
    main()
