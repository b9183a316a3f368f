"""Bytes (table and its indexes, from SQLite's ``dbstat``) and rows per table of every SQLite
file under a state directory, as JSON: ``python tables.py STATE_DIR > tables.json``."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path


def tables(path: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sizes = conn.execute(
            "SELECT coalesce(m.tbl_name, d.name) AS t, sum(d.pgsize) FROM dbstat d"
            " LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY t"
        ).fetchall()
        return {
            name: [size, conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]]
            for name, size in sizes
        }
    finally:
        conn.close()


def main(root: Path) -> None:
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*.db")):
        try:
            found[str(path.relative_to(root))] = tables(path)
        except sqlite3.DatabaseError as error:  # not SQLite's, or not readable
            found[str(path.relative_to(root))] = str(error)
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
