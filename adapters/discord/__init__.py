"""Discord: slash commands and buttons on discord.py; delivery over REST from any worker."""

from adapters.discord.adapter import DiscordAdapter, create_adapter, sync_commands

__all__ = ["DiscordAdapter", "create_adapter", "sync_commands"]
