"""``python -m harness.report.diagrams [FOLDER]``: the diagrams of the definition
`SAGA_DEFINITION` names (default v1) into FOLDER (default: docs/diagrams)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.report.diagrams.files import write
from shared.definitions import definition_named
from shared.settings import Settings


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/diagrams")
    for path in write(folder, definition_named(Settings().definition)):
        print(path)


if __name__ == "__main__":
    main()
