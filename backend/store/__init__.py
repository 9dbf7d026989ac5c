"""SQLite store: connection factory, migrations, one writer thread, reader pool, repositories."""

from backend.store.store import Store

__all__ = ["Store"]
