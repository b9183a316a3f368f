"""Per-service stores: one database per service, reached only through a transaction."""

from shared.store.sqlite import SqliteStore, Tx

__all__ = ["SqliteStore", "Tx"]
