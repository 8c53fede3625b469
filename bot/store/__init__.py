"""Durable state: the ``Store`` port, its SQLite and PostgreSQL backends, and ``open_store``."""

from bot.store.base import ClaimedJob, Installation, Store
from bot.store.factory import open_store

__all__ = ["ClaimedJob", "Installation", "Store", "open_store"]
