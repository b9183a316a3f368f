"""`saga-compare`: the command line, one module per command group."""

from harness.cli.app import main

__all__ = ["main"]
