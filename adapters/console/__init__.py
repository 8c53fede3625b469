"""The console adapter: the whole /imagine flow on stdin/stdout, offline by default."""

from adapters.console.adapter import ConsoleAdapter, ConsoleDelivery

__all__ = ["ConsoleAdapter", "ConsoleDelivery"]
