"""The SQLite backend: one file in WAL mode through aiosqlite, for a bot in one process."""

from bot.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
