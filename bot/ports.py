"""The protocols the core needs from the world around it: delivery, blob storage, the store, providers
and the clock. Adapters and backends implement them; the use cases depend only on these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bot.domain.models import Job


@dataclass(frozen=True)
class OutImage:
    key: str
    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    # The stored file, where the blob store is a local folder.
    path: Path | None = None


@dataclass(frozen=True)
class Progress:
    stage: str  # "queued" | "generating"
    queue_position: int | None = None
    elapsed: float = 0.0


class DeliveryPort(Protocol):
    """Speaks only REST (or local output), so any worker process can deliver any job."""

    async def progress(self, job: Job, progress: Progress) -> None: ...

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        """Post the images; return what identifies the posted message (stored with the job)."""

    async def notify_failure(self, job: Job) -> None:
        """Tell the requester why the job ended without an image (``job.error_message``)."""


@runtime_checkable
class ChannelCheck(Protocol):
    """Optional for a delivery port: lets the worker re-check a channel just before posting."""

    async def channel_age_restricted(self, job: Job) -> bool | None:
        """Whether the job's channel (for a thread: its parent) is age-restricted now; None when
        unknown (the flag stored with the request is used). May raise DeliveryError."""


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """The file behind a key where the store is a local folder, else None."""

    async def aclose(self) -> None: ...


# Signing in to the dashboard -------------------------------------------------------------------

# At most this many communities are remembered in one session (the cookie stays small).
MAX_COMMUNITIES = 50


class SignInFailed(Exception):
    """The platform refused or failed the sign-in; ``message`` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Community:
    platform: str
    id: str
    name: str


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and the communities that may be theirs to administer (re-checked later)."""

    platform: str
    user_id: str
    name: str
    candidates: tuple[Community, ...]


@dataclass(frozen=True)
class Membership:
    """A member's standing in a community, read with the bot's token just now."""

    role_ids: tuple[str, ...]
    is_platform_admin: bool


class GuildReader(Protocol):
    """What the bot's own Discord client tells the dashboard about guilds (``adapters.discord``
    reads it through discord.py). Failures raise SignInFailed."""

    async def guild_ids(self) -> set[str]:
        """The guilds the bot is in."""

    async def membership(self, guild_id: str, user_id: str) -> Membership | None:
        """The member's roles and whether they may manage the guild (its owner, Administrator
        or Manage Server); None: the bot or the user is not in that guild."""

    async def guild(self, guild_id: str) -> Community | None:
        """The guild, if the bot is in it."""

    async def application_owners(self) -> set[str]:
        """The application's owner, or its team's members."""

    async def aclose(self) -> None: ...


class SignIn(Protocol):
    """A platform's sign-in for the dashboard (OAuth or OpenID Connect), and the re-check of a
    user's standing with the bot's own token on every request. Failures raise SignInFailed."""

    platform: str
    label: str

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        """Where the browser goes to consent; it comes back to ``redirect_uri``."""

    async def finish(self, code: str, redirect_uri: str) -> SignedIn:
        """The user behind the code the platform sent back."""

    async def membership(self, community_id: str, user_id: str) -> Membership | None:
        """None: the bot or the user is not in that community."""

    async def community(self, community_id: str) -> Community | None:
        """The community, if the bot serves it."""

    async def application_owners(self) -> set[str]:
        """User ids of the bot's owners on the platform (may be empty)."""

    async def aclose(self) -> None:
        """Release what the sign-in holds (a platform client's connections)."""


# The store, the providers and the clock are defined beside their implementations; named here so a
# use case can find every protocol it depends on in one module.
from bot.domain.clock import Clock  # noqa: E402
from bot.providers.base import Provider  # noqa: E402
from bot.store import Installation, Store  # noqa: E402

__all__ = [
    "MAX_COMMUNITIES",
    "BlobStore",
    "ChannelCheck",
    "Clock",
    "Community",
    "DeliveryPort",
    "GuildReader",
    "Installation",
    "Membership",
    "OutImage",
    "Progress",
    "Provider",
    "SignIn",
    "SignInFailed",
    "SignedIn",
    "Store",
]
