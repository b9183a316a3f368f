"""The command line's arguments as typer should parse them; light, as `app.main` runs it first."""

from __future__ import annotations

from harness.deploy.attach_default import DEFAULT


def with_default_attach(argv: list[str]) -> list[str]:
    """``--attach`` with no folder after it means the settings' state dir.

    typer has no option with an optional value, so the bare flag is given a marker value
    (`harness.deploy.attach_default.DEFAULT`) before parsing.
    """
    expanded = list(argv)
    for index, arg in enumerate(expanded):
        following = expanded[index + 1] if index + 1 < len(expanded) else None
        if arg == "--attach" and (following is None or following.startswith("-")):
            expanded[index] = f"--attach={DEFAULT}"
    return expanded
