"""Writes a committed anomaly-lab run into docs/anomalies.md (its "The committed run" section).

The section's figures are rendered from the run's own `anomalies.json` by the report's Markdown
template (`harness.anomalies.report.markdown`, headings one level down, cells linking to the
run's page beside the JSON); nothing is typed by hand. Only the text between the markers is
replaced, so the prose around the figures stays.

    .venv/bin/python scripts/anomalies_doc.py docs/anomalies-run/anomalies.json docs/anomalies.md
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness.anomalies.matrix import LabDocument
from harness.anomalies.report import PAGE, markdown

BEGIN = "<!-- run: begin (scripts/anomalies_doc.py writes what follows) -->"
END = "<!-- run: end -->"


def section(run: Path, doc_file: Path) -> str:
    """The run's Markdown, its title dropped and its headings one level below the doc's."""
    doc = LabDocument.model_validate(json.loads(run.read_text(encoding="utf-8")))
    page = Path(os.path.relpath(run.parent / PAGE, doc_file.parent)).as_posix()
    lines = markdown(doc, page).splitlines()
    body = [("#" + line if line.startswith("##") else line) for line in lines[1:]]
    return "\n".join(body).strip() + "\n"


def splice(text: str, generated: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: the doc has no {BEGIN!r} ... {END!r} markers; add them")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{generated}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run's anomalies.json")
    parser.add_argument("doc", type=Path, help="the Markdown page to write it into")
    args = parser.parse_args()
    args.doc.write_text(splice(args.doc.read_text(encoding="utf-8"), section(args.run, args.doc)))


if __name__ == "__main__":
    main()
