"""Terminal output of `saga-compare`: one-line errors, and tables that never cut a word.

A rich table squeezed below its natural width truncates cells with an ellipsis, so a
scenario name or an outcome would reach the reader as "payment_declin…". `print_table`
lets at most one column wrap between words and, when even that does not fit the console
(80 columns, or a pipe), prints each row as a heading followed by `column: value` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)

_UNBOUNDED = 100_000
"""A width no table reaches, to measure a table's natural (unwrapped) width."""


def one_line(message: str) -> str:
    """Collapse whitespace and line breaks, so an error is exactly one line."""
    return " ".join(message.split())


def error(message: str) -> None:
    """Print ``error: message`` as exactly one stderr line (never wrapped, no markup read)."""
    err.print(f"[red]error:[/red] {escape(one_line(message))}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` as one stderr line and end the command with ``code``."""
    error(message)
    raise typer.Exit(code)


def say(markup: str) -> None:
    """One stdout line that is never wrapped: paths and addresses are copied, not read."""
    out.print(markup, soft_wrap=True, highlight=False)


def note(message: str) -> None:
    """One plain line on stderr (progress, where a file went), never on stdout."""
    err.print(escape(one_line(message)), highlight=False, soft_wrap=True)


@dataclass
class Rows:
    """A table's content: headers, rows of rich-markup cells, and the one column that may wrap."""

    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    title: str | None = None
    wrap: int | None = None
    """Index of the column whose cells wrap between words (prose, outcome lists)."""

    def add(self, *cells: str) -> None:
        self.rows.append(cells)


def print_table(console: Console, rows: Rows) -> None:
    """Print rows as a table when it fits the console without cutting a word, else as records."""
    table = _table(rows)
    if _needed_width(console, rows, table) <= console.width:
        console.print(table)
    else:
        _print_records(console, rows)


def _table(rows: Rows) -> Table:
    table = Table(title=rows.title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    for index, header in enumerate(rows.headers):
        table.add_column(header, no_wrap=index != rows.wrap)
    for cells in rows.rows:
        table.add_row(*cells)
    return table


def _needed_width(console: Console, rows: Rows, table: Table) -> int:
    """The table's natural width, less what its wrapping column can give up between words."""
    natural = Measurement.get(console, console.options.update(max_width=_UNBOUNDED), table)
    if rows.wrap is None:
        return natural.maximum
    cells = [rows.headers[rows.wrap], *(r[rows.wrap] for r in rows.rows)]
    widest = max(_cell_width(cell) for cell in cells)
    longest_word = max(_longest_word(cell) for cell in cells)
    return natural.maximum - (widest - longest_word)


def _cell_width(markup: str) -> int:
    return Text.from_markup(markup).cell_len


def _longest_word(markup: str) -> int:
    words = Text.from_markup(markup).plain.split()
    return max((len(word) for word in words), default=0)


def _print_records(console: Console, rows: Rows) -> None:
    """Each row as its first cell on a line, then ``header: value`` pairs packed to the width."""
    if rows.title:
        console.print(Text(rows.title, style="bold"))
    for cells in rows.rows:
        console.print(Text.from_markup(cells[0], style="bold"))
        pairs = [
            Text.from_markup(f"{escape(header)}: {cell}")
            for header, cell in zip(rows.headers[1:], cells[1:], strict=True)
        ]
        for line in _pack(pairs, console.width - 2):
            console.print(Padding(line, (0, 0, 0, 2), expand=False))


def _pack(pairs: list[Text], width: int, gap: str = "   ") -> list[Text]:
    """Join pairs into lines no wider than width; a pair wider than a line gets its own."""
    lines: list[Text] = []
    for pair in pairs:
        if lines and lines[-1].cell_len + len(gap) + pair.cell_len <= width:
            lines[-1].append(gap)
            lines[-1].append_text(pair)
        else:
            lines.append(pair.copy())
    return lines
