"""The command line imports only the module of the command it runs, yet reads as one app.

`harness.cli.app.COMMANDS` says which module registers which commands; a command added to a
module but not to the table (or the reverse) fails here rather than vanishing from the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types

import pytest
import typer

from harness.cli.app import COMMANDS, build_app, main

EVERY_COMMAND = [name for names in COMMANDS.values() for name in names]
HEAVY = ("harness.session", "harness.deploy.attach", "temporalio", "monitor.app")


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[str | int | None, str]:
    """`saga-compare ARGS` in this process: its exit code and stdout."""
    monkeypatch.setattr(sys, "argv", ["saga-compare", *args])
    # As under the installed script, whose `__main__` has no package: click then names the
    # program after argv[0] (under pytest's `__main__` it would be "python -m pytest").
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().out


def listed_commands(help_text: str) -> list[str]:
    """The command names of a group's help, in the order it lists them."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ")]


@pytest.mark.parametrize("module", list(COMMANDS))
def test_each_module_registers_exactly_the_commands_its_row_of_the_table_names(
    module: str,
) -> None:
    group = typer.main.get_command(build_app([module]))
    assert list(group.commands) == list(COMMANDS[module])  # type: ignore[attr-defined]


def test_the_help_lists_the_commands_of_every_module_in_the_tables_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = run_main(monkeypatch, capsys, "--help")
    assert code == 0
    assert listed_commands(shown) == EVERY_COMMAND


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_a_named_command_shows_its_own_usage_though_only_its_module_is_registered(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = run_main(monkeypatch, capsys, command, "--help")
    assert code == 0
    assert shown.startswith(f"Usage: saga-compare {command} [OPTIONS]")


PROBE = textwrap.dedent(
    """
    import json, sys
    from harness.cli.app import COMMANDS, main

    def loaded():
        return sorted(m for m in sys.modules if m in COMMANDS or m in {heavy!r})

    at_import = loaded()
    sys.argv = ["saga-compare", *sys.argv[1:]]
    try:
        main()
    except SystemExit as done:
        code = done.code
    print(json.dumps({{"at_import": at_import, "after": loaded(), "code": code}}))
    """
)


def test_naming_a_command_imports_its_module_and_none_of_the_others() -> None:
    probe = PROBE.format(heavy=set(HEAVY))
    ran = subprocess.run(
        [sys.executable, "-c", probe, "report", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(ran.stdout.splitlines()[-1])
    assert found == {"at_import": [], "after": ["harness.cli.report"], "code": 0}
