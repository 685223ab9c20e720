"""The embedded SQLite backend."""

from ledger.sqlite.store import SqliteLedger

__all__ = ["SqliteLedger"]
