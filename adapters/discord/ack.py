"""The acknowledgement every interaction gets first, before any storage or network call."""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)


async def acknowledge(
    interaction: discord.Interaction, *, thinking: bool = False, ephemeral: bool = False
) -> bool:
    """Defer at once. False when Discord refuses: the interaction was already acknowledged (a
    replayed event, or another process took it) or is over 3 s old; then nothing else happens."""
    try:
        await interaction.response.defer(thinking=thinking, ephemeral=ephemeral)
    except (discord.HTTPException, discord.InteractionResponded) as exc:
        log.info(
            "interaction %s not acknowledged (%s); skipped", interaction.id, type(exc).__name__
        )
        return False
    return True
