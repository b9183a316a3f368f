"""Per-service stores: one database per service, reached only through a transaction.

`base` is the protocol (`Store`, `Tx`, `Migration`); `sqlite` and `postgres` implement it.
`legacy` is the aiosqlite store the services still use until they move to `Store.run`.
"""

from shared.store.legacy import SqliteStore, Tx

__all__ = ["SqliteStore", "Tx"]
