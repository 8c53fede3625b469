"""Interactions to core requests: /imagine, the buttons under a result and the Edit modal each end
in one ImagineService call, acknowledged first; refusals go to the requester only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import discord

from adapters.discord import messages
from adapters.discord.ack import acknowledge
from adapters.discord.admin import AdminCommands, actor_of
from adapters.discord.components import EditPromptModal
from adapters.discord.delivery import (
    APPLICATION_ID,
    EPHEMERAL_ACK,
    INTERACTION_ID,
    INTERACTION_TOKEN,
    NO_MENTIONS,
    PARENT_URL,
    PLATFORM,
    SIZE_LIMIT,
    DiscordDelivery,
)
from adapters.discord.personal import PersonalCommands
from adapters.host import Host
from bot.domain.errors import ImagineError, JobNotFound, RequestRejected
from bot.domain.models import ImagineRequest, JobStatus, ReplyTarget
from bot.domain.personal import PERSONAL_COMMUNITY
from bot.jobs.service import Accepted
from bot.text import replies
from bot.text.flags import ImagineArgs, option_args
from bot.text.request import build_request

log = logging.getLogger(__name__)
# The longest /imagine waits for the user's /prefer before it acknowledges (a store read, usually
# about a millisecond; Discord allows 3 s for the acknowledgement).
PREFERENCE_WAIT = 0.5


class InteractionHandler:
    """Turns interactions into core requests and core answers into interaction responses."""

    def __init__(self, app: Host, delivery: DiscordDelivery) -> None:
        self._app = app
        self._delivery = delivery
        self.admin = AdminCommands(app)
        self.personal = PersonalCommands(app)

    # /imagine -----------------------------------------------------------------------------------

    async def imagine(
        self,
        interaction: discord.Interaction,
        *,
        prompt: str,
        model: str | None,
        aspect: str | None,
        seed: int | None,
        image: discord.Attachment | None,
        count: int | None = None,
        output_format: str | None = None,
        enhance: bool | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        private: bool | None = None,
    ) -> None:
        if private is None:
            private = await self._private_by_default(interaction)
        if not await acknowledge(interaction, thinking=True, ephemeral=private):
            return
        inputs: tuple[str, ...] = ()
        if image is not None:
            if not (image.content_type or "").startswith("image/"):
                await self._refuse(interaction, "The `image` option takes a PNG, JPEG or WebP.")
                return
            inputs = (image.url,)
        if count is not None and not 1 <= count <= messages.MAX_IMAGES:
            await self._refuse(interaction, f"`count` is 1 to {messages.MAX_IMAGES} images.")
            return
        try:
            # No count given: the community's default.
            args = option_args(
                prompt,
                model=model,
                aspect_ratio=aspect,
                seed=seed,
                images=inputs,
                count=count,
                output_format=output_format,
                enhance=enhance,
                steps=steps,
                guidance=guidance,
            )
        except RequestRejected as exc:
            await self._refuse(interaction, exc.user_message)
            return
        request = self._request(interaction, args, inputs, private=bool(private))
        await self._submit(interaction, lambda: self._app.service.imagine(request))

    async def blend(
        self,
        interaction: discord.Interaction,
        *,
        images: list[discord.Attachment | None],
        prompt: str | None,
    ) -> None:
        """/blend: 2 to 5 attachments and an optional prompt, one image from all of them."""
        if not await acknowledge(interaction, thinking=True):
            return
        attached = [image for image in images if image is not None]
        if any(not (a.content_type or "").startswith("image/") for a in attached):
            await self._refuse(interaction, "/blend takes PNG, JPEG or WebP images.")
            return
        inputs = tuple(a.url for a in attached)
        request = self._request(interaction, ImagineArgs(prompt or ""), inputs)
        await self._submit(interaction, lambda: self._app.service.blend(request))

    # Buttons and the Edit modal -----------------------------------------------------------------

    async def button(self, interaction: discord.Interaction, action: str, job_id: str) -> None:
        if action == "edit":
            # The result's own attachments say how many images there are to pick from.
            shown = len(interaction.message.attachments) if interaction.message else 0
            await interaction.response.send_modal(
                EditPromptModal(job_id, min(shown, messages.MAX_IMAGES) or messages.MAX_IMAGES)
            )
            return
        if action == "delete":
            await self._delete(interaction, job_id)
            return
        if action == "cancel":
            await self._cancel(interaction, job_id)
            return
        core_action, image = _follow_up(action)
        # A button under a private (ephemeral) image answers privately too.
        private = _on_ephemeral_message(interaction)
        if not await acknowledge(interaction, thinking=True, ephemeral=private):
            return
        request = self._request(interaction, ImagineArgs(""), private=private)
        await self._submit(
            interaction,
            lambda: self._app.service.follow_up(job_id, core_action, request, image=image),
        )

    async def rerun(self, interaction: discord.Interaction, job_id: str) -> None:
        """Re-run under a /history line (an ephemeral message): a private new image, for the
        job's own requester only."""
        private = _on_ephemeral_message(interaction)
        if not await acknowledge(interaction, thinking=True, ephemeral=private):
            return
        request = self._request(interaction, ImagineArgs(""), private=private)
        await self._submit(interaction, lambda: self._app.service.rerun(job_id, request))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal submissions of Edit (the one interaction kind not routed by discord.py here)."""
        if interaction.type is not discord.InteractionType.modal_submit or not interaction.data:
            return
        match = messages.EDIT_MODAL_RE.match(str(interaction.data.get("custom_id", "")))
        if match is None:
            return
        private = _on_ephemeral_message(interaction)
        if not await acknowledge(interaction, thinking=True, ephemeral=private):
            return
        new_prompt = _submitted_value(interaction.data, messages.EDIT_PROMPT_INPUT) or ""
        number = (_submitted_value(interaction.data, messages.EDIT_IMAGE_INPUT) or "1").strip()
        if not number.isdigit() or not 1 <= int(number) <= messages.MAX_IMAGES:
            await self._refuse(
                interaction, f"The image to start from is a number from 1 to {messages.MAX_IMAGES}."
            )
            return
        request = self._request(interaction, ImagineArgs(new_prompt), private=private)
        job_id = match["job_id"]
        await self._submit(
            interaction,
            lambda: self._app.service.follow_up(
                job_id, "edit", request, prompt=new_prompt, image=int(number)
            ),
        )

    async def _is_moderator(self, interaction: discord.Interaction) -> bool:
        actor = actor_of(interaction)
        return (
            actor.is_platform_admin
            or interaction.permissions.manage_messages
            or await self._app.service.is_admin(str(interaction.guild_id or ""), actor)
        )

    async def _cancel(self, interaction: discord.Interaction, job_id: str) -> None:
        """Cancel a queued or generating job: it ends cancelled and its message says so."""
        # A deferred update: the "original response" is then the message carrying the button.
        if not await acknowledge(interaction):
            return
        moderator = await self._is_moderator(interaction)
        try:
            # Ownership is the core's rule: the requester or a moderator.
            job = await self._app.service.cancel(
                job_id, user_id=str(interaction.user.id), is_admin=moderator
            )
        except JobNotFound:
            await self._tell(interaction, replies.JOB_UNKNOWN)
            return
        except RequestRejected as exc:
            await self._tell(interaction, exc.user_message)
            return
        if job.status is not JobStatus.CANCELLED:
            await self._tell(interaction, replies.NOT_CANCELLABLE)
            return
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content=messages.cancelled_text(job), view=None, allowed_mentions=NO_MENTIONS
            )

    async def _tell(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.followup.send(f"⚠️ {text}", ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _delete(self, interaction: discord.Interaction, job_id: str) -> None:
        # A deferred update: the "original response" is then the message carrying the button.
        if not await acknowledge(interaction):
            return
        actor = actor_of(interaction)
        service = self._app.service
        moderator = await self._is_moderator(interaction)
        try:
            # Ownership is the core's rule: the requester or a moderator.
            await service.delete(job_id, user_id=actor.user_id, is_admin=moderator)
        except JobNotFound:
            if not moderator:
                await interaction.followup.send(
                    "Only a moderator can delete an image the bot no longer knows.", ephemeral=True
                )
                return
        except RequestRejected as exc:
            await interaction.followup.send(f"⚠️ {exc.user_message}", ephemeral=True)
            return
        with contextlib.suppress(discord.NotFound):
            await interaction.delete_original_response()

    # Shared ---------------------------------------------------------------------------------------

    def _request(
        self,
        interaction: discord.Interaction,
        args: ImagineArgs,
        inputs: tuple[str, ...] = (),
        *,
        private: bool = False,
    ) -> ImagineRequest:
        user = interaction.user
        roles: tuple[str, ...] = ()
        if isinstance(user, discord.Member):
            roles = tuple(str(role_id) for role_id in user._roles)
        channel_id = str(interaction.channel_id or "")
        data = {
            APPLICATION_ID: str(interaction.application_id),
            INTERACTION_ID: str(interaction.id),
            INTERACTION_TOKEN: interaction.token,
            SIZE_LIMIT: str(interaction.filesize_limit),
            **({EPHEMERAL_ACK: "1"} if private else {}),
        }
        if interaction.message is not None:
            # A button or modal under a result: its follow-up links back to that message.
            data[PARENT_URL] = interaction.message.jump_url
        return build_request(
            args,
            platform=PLATFORM,
            community_id=community_of(interaction),
            channel_id=channel_id,
            user_id=str(user.id),
            input_images=inputs,
            reply=ReplyTarget(platform=PLATFORM, channel_id=channel_id, data=data),
            dedupe_key=str(interaction.id),
            user_roles=roles,
            user_is_admin=_is_admin(interaction),
            channel_age_restricted=_age_restricted(interaction.channel),
        ).with_changes(private=private)

    async def _private_by_default(self, interaction: discord.Interaction) -> bool:
        """Whether the user's /prefer makes this request private, so the "thinking" line is
        private from the start. Asked for at most PREFERENCE_WAIT of Discord's 3 seconds; past
        that the deferral is public, and ``_submit`` takes it away if the job is private."""
        try:
            async with asyncio.timeout(PREFERENCE_WAIT):
                return await self._app.service.private_by_default(
                    PLATFORM, str(interaction.user.id), community_of(interaction)
                )
        except (TimeoutError, ImagineError) as exc:
            log.info("interaction %s: preference not read (%s)", interaction.id, type(exc).__name__)
            return False

    async def _submit(
        self, interaction: discord.Interaction, call: Callable[[], Awaitable[Accepted]]
    ) -> None:
        """Run a service call after the ack; show the queue position or the refusal."""
        try:
            accepted = await call()
        except RequestRejected as exc:
            await self._refuse(interaction, exc.user_message)
            return
        except JobNotFound:
            await self._refuse(interaction, replies.JOB_UNKNOWN)
            return
        except ImagineError:
            log.exception("interaction %s: the core failed", interaction.id)
            await self._refuse(interaction, replies.SOMETHING_WRONG)
            return
        if accepted.duplicate:
            return
        if accepted.job.request.private and not accepted.job.request.reply.data.get(EPHEMERAL_ACK):
            # Made private by the user's /prefer after a public deferral: take the public
            # "thinking" line away; the image comes as an ephemeral follow-up.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            return
        await self._delivery.show_queued(accepted.job, accepted.position)

    async def _refuse(self, interaction: discord.Interaction, text: str) -> None:
        """Refusals are ephemeral: drop the public "thinking" message, tell only the requester."""
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        await interaction.followup.send(
            f"⚠️ {text}", ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


def _follow_up(action: str) -> tuple[str, int]:
    """A button's action as the core's follow-up and image number: ``u2`` upscales image 2,
    ``v3`` varies image 3; the buttons of an upscale (one image) and older buttons act on image 1."""
    if action[0] in "uv" and action[1:].isdigit():
        return ("upscale" if action[0] == "u" else "vary"), int(action[1:])
    return {"vary-subtle": "vary"}.get(action, action), 1


def community_of(interaction: discord.Interaction) -> str:
    """The guild whose settings apply, when the bot is installed in it (wherever the command came
    from); otherwise personal use: a DM, a private channel, or a server where only the user
    installed the app (Discord's ``authorizing_integration_owners`` has no guild install)."""
    if interaction.guild_id is not None and interaction.is_guild_integration():
        return str(interaction.guild_id)
    return PERSONAL_COMMUNITY


def _on_ephemeral_message(interaction: discord.Interaction) -> bool:
    message = interaction.message
    return message is not None and message.flags.ephemeral


def _is_admin(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions
    return permissions.administrator or permissions.manage_guild


def _age_restricted(channel: Any) -> bool:
    if channel is None:
        return False
    is_nsfw = getattr(channel, "is_nsfw", None)
    if callable(is_nsfw):
        try:
            return bool(is_nsfw())
        except AttributeError:
            return False
    return bool(getattr(channel, "nsfw", False))


def _submitted_value(data: Mapping[str, Any], custom_id: str) -> str | None:
    """The value of one input of a modal submission, in rows or in labels (any nesting)."""
    stack: list[Any] = list(data.get("components") or [])
    while stack:
        item = stack.pop(0)
        if not isinstance(item, dict):
            continue
        if item.get("custom_id") == custom_id and "value" in item:
            return str(item["value"])
        stack.extend(item.get("components") or [])
        if isinstance(item.get("component"), dict):
            stack.append(item["component"])
    return None
