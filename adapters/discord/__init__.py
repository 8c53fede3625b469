"""Discord: slash commands and buttons on discord.py; delivery over REST from any worker."""

from adapters.discord.adapter import DiscordAdapter, create_adapter, sync_commands
from adapters.discord.doctor import check_discord as doctor_check

__all__ = ["DiscordAdapter", "create_adapter", "doctor_check", "sync_commands"]
