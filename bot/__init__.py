"""imagine-bot's core: everything that is not platform glue."""

__version__ = "0.1.0"
