"""`saga-compare`: the command line (the harness fills it in; for now the domain smoke check)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.command()
def demo() -> None:
    """Run the shared domain's smoke check (the full demo arrives with the harness)."""
    from shared.__main__ import smoke

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(smoke(Path(folder)))


@app.command()
def version() -> None:
    """Print the version."""
    print("saga-compare 0.1.0")


def main() -> None:
    app()
