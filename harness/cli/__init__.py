"""`saga-compare`: the command line, one module per command group (entry point: ``app.main``).

Nothing is imported here: modules elsewhere in the harness print through ``harness.cli.console``,
and importing them must not import every command first.
"""
