"""The application commands, as discord.py objects on a CommandTree; each ends in one handler call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from adapters.discord.admin import build_admin_group
from adapters.discord.personal import build_personal_commands
from bot.domain.catalog import Catalog
from bot.domain.models import OUTPUT_FORMATS

if TYPE_CHECKING:
    from adapters.discord.interactions import InteractionHandler

ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9")
MAX_SEED = 2**32 - 1
# Outer bounds only: the core checks each model's own range and names it in its refusal.
MAX_STEPS = 1000
MAX_GUIDANCE = 100.0

HELP_TEXT = """**/imagine** turns a description into an image with FLUX.2.
• `prompt`: what you want to see, e.g. *a red fox at dawn, watercolor*
• `model`: which FLUX.2 variant (default: the community's default)
• `aspect`: the shape, e.g. 16:9 for wide, 9:16 for tall
• `seed`: a whole number; the same prompt and seed give the same image
• `image`: a picture to edit or start from
• `format`: jpeg (default), png or webp; `enhance`: let the model detail the prompt
• `steps`, `guidance`: FLUX.2 [flex] only, within its range
• `private`: show the image to you only (it never appears in the channel)
Under each image: **Reroll** (new seed), **Vary** (a close variation), **Edit** (new prompt on \
this image), **Upscale to Max** (the highest-quality model), **Delete** (the requester or a moderator).
**/quota** shows how many images you have left. Moderators: **/imagine-admin**.
**/history** lists your recent images with a Re-run button each; **/prefer set** keeps your own defaults (model, aspect, format, count, private, enhance, a suffix for every prompt), **/prefer show**, **/prefer reset**. /imagine also works in a DM with the bot."""


def build_tree(
    client: discord.Client, handler: InteractionHandler | None, catalog: Catalog
) -> app_commands.CommandTree[discord.Client]:
    """Every command on a new CommandTree of ``client``. Without a handler (``sync-commands``)
    the commands are only described, never run."""

    def need() -> InteractionHandler:
        if handler is None:
            raise RuntimeError("commands registered without a handler cannot run")
        return handler

    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    model_choices = [
        app_commands.Choice(name=variant.label, value=variant.name)
        for variant in list(catalog.variants.values())[:25]
    ]
    aspect_choices = [app_commands.Choice(name=a, value=a) for a in ASPECTS]
    format_choices = [app_commands.Choice(name=f, value=f) for f in OUTPUT_FORMATS]

    @app_commands.command(name="imagine", description="Make an image from a description")
    @app_commands.describe(
        prompt="What to draw",
        model="Which FLUX.2 model",
        aspect="Aspect ratio",
        seed="Seed for repeatable images",
        image="An image to edit or start from",
        output_format="Image format (default: the community's, else JPEG)",
        enhance="Let the provider rewrite the prompt in more detail (prompt upsampling)",
        steps="Inference steps (FLUX.2 [flex] only)",
        guidance="Guidance scale (FLUX.2 [flex] only)",
        private="Show the image to you only",
    )
    @app_commands.rename(output_format="format")
    @app_commands.choices(model=model_choices, aspect=aspect_choices, output_format=format_choices)
    # Servers, the bot's DM and private channels; installed to a server or to a user's account.
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        model: str | None = None,
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        image: discord.Attachment | None = None,
        output_format: str | None = None,
        enhance: bool | None = None,
        steps: app_commands.Range[int, 1, MAX_STEPS] | None = None,
        guidance: app_commands.Range[float, 0.0, MAX_GUIDANCE] | None = None,
        private: bool | None = None,
    ) -> None:
        await need().imagine(
            interaction,
            prompt=prompt,
            model=model,
            aspect=aspect,
            seed=seed,
            image=image,
            output_format=output_format,
            enhance=enhance,
            steps=steps,
            guidance=guidance,
            private=private,
        )

    @app_commands.command(name="imagine-help", description="How to use /imagine")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def imagine_help(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP_TEXT, ephemeral=True)

    tree.add_command(imagine)
    tree.add_command(imagine_help)
    for command in build_admin_group(lambda: need().admin, catalog):
        tree.add_command(command)
    for personal in build_personal_commands(lambda: need().personal, catalog):
        tree.add_command(personal)
    return tree
