"""The ``Store`` port and the choice of backend from ``IMAGINE_DATABASE_URL``."""

from bot.store.base import ClaimedJob, Store, open_store

__all__ = ["ClaimedJob", "Store", "open_store"]
