"""The lines of version 2's change per style, counted from the versioning branch's own commits.

    .venv/bin/python scripts/versioning_lines.py --base 514617e --head <commit>

Sums ``git log --first-parent --no-merges --numstat BASE..HEAD`` over the production packages
(``shared/``, ``orchestration/``, ``choreography/``; harness/versioning/lines.py says what
counts, and the review's change row counts the same). Prints a Markdown table per package, then
the totals (docs/versioning.md quotes it).
"""

from __future__ import annotations

import argparse

from harness.versioning.lines import numstat, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit the branch started from")
    parser.add_argument("--head", required=True, help="a commit of the branch")
    args = parser.parse_args()
    print("\n".join(table(numstat(args.base, args.head))))


if __name__ == "__main__":
    main()
