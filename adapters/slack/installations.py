"""Slack installs in many workspaces, kept in the project's database.

``DatabaseInstallationStore`` is slack_sdk's ``AsyncInstallationStore`` and ``DatabaseStateStore``
its ``AsyncOAuthStateStore``, both on the core ``Store`` (SQLite or PostgreSQL alike), so every
process sees an install, an uninstall and an OAuth flow's state at once. An installation is kept
as one Fernet token (cryptography) holding its JSON: no bot, user or refresh token is ever written
in clear, and a row read with another key is treated as no installation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from cryptography.fernet import Fernet, InvalidToken
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator

from adapters.slack.delivery import PLATFORM
from bot.jobs.installations import sealer_from_secret
from bot.ports import Installation as StoredInstallation
from bot.ports import Store

log = logging.getLogger(__name__)
# For the client that exchanges refresh tokens: slack_sdk logs each answer at DEBUG, and these
# answers hold new tokens, so this logger never passes DEBUG on.
TOKEN_LOG = logging.getLogger(f"{__name__}.tokens")
TOKEN_LOG.setLevel(logging.INFO)

__all__ = [
    "TOKEN_LOG",
    "Bots",
    "DatabaseInstallationStore",
    "DatabaseStateStore",
    "InstallationTokens",
    "StoredAuthorize",
    "sealer_from_secret",
]


def _plain(value: Any) -> Any:
    # Installation.to_dict_for_copying gives datetimes; the constructor takes them back as ISO
    # text, whatever number type the field wants (installed_at a float, *_expires_at an int).
    return value.isoformat() if isinstance(value, datetime) else value


class DatabaseInstallationStore(AsyncInstallationStore):
    """One installation per workspace (or per organisation for an org-wide install)."""

    def __init__(self, store: Store, sealer: Fernet) -> None:
        self._store = store
        self._sealer = sealer

    @property
    def logger(self) -> logging.Logger:
        return log

    @staticmethod
    def _key(
        enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> tuple[str, str]:
        # An org-wide install serves every workspace of the organisation: kept under team "".
        return enterprise_id or "", "" if is_enterprise_install else team_id or ""

    async def async_save(self, installation: Installation) -> None:
        values = {k: _plain(v) for k, v in installation.to_dict_for_copying().items()}
        sealed = self._sealer.encrypt(json.dumps(values).encode("utf-8")).decode("ascii")
        enterprise, team = self._key(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        await self._store.save_installation(
            StoredInstallation(PLATFORM, enterprise, team, sealed, float(installation.installed_at))
        )
        log.info("Slack: installed in %s", team or enterprise)

    async def async_save_bot(self, bot: Bot) -> None:  # pragma: no cover - Bolt saves installations
        raise NotImplementedError("installations are saved whole, with async_save")

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        enterprise, team = self._key(enterprise_id, team_id, is_enterprise_install)
        row = await self._store.find_installation(PLATFORM, enterprise, team)
        if row is None and enterprise and team:
            # A workspace of an organisation where the app was installed org-wide.
            row = await self._store.find_installation(PLATFORM, enterprise, "")
        if row is None:
            return None
        installation = self._open(row)
        if installation is not None and user_id is not None and user_id != installation.user_id:
            return None  # only the installer's user token is kept
        return installation

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if installation is None or not installation.bot_token:
            return None
        return installation.to_bot()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
            return
        # A user's token was revoked: the bot token stays, that user's token goes.
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )
        if installation is not None and installation.user_token:
            values = installation.to_dict_for_copying()
            values.update(user_token=None, user_refresh_token=None, user_token_expires_at=None)
            await self.async_save(Installation(**values))

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        enterprise, team = enterprise_id or "", team_id or ""
        deleted = await self._store.delete_installation(PLATFORM, enterprise, team)
        if not deleted and enterprise and team:
            deleted = await self._store.delete_installation(PLATFORM, enterprise, "")
        if deleted:
            log.info("Slack: tokens of %s deleted (uninstalled or revoked)", team or enterprise)

    def _open(self, row: StoredInstallation) -> Installation | None:
        try:
            values = json.loads(self._sealer.decrypt(row.secret.encode("ascii")))
        except (InvalidToken, ValueError):
            # Sealed with another IMAGINE_SECRET_KEY: the workspace must install the app again.
            log.warning(
                "Slack: the installation of %s cannot be read with this IMAGINE_SECRET_KEY",
                row.team_id or row.enterprise_id,
            )
            return None
        return Installation(**values)


class DatabaseStateStore(AsyncOAuthStateStore):
    """The OAuth ``state``: issued on /slack/install, good once, until it expires."""

    def __init__(
        self, store: Store, now: Callable[[], float], expiration_seconds: float = 600.0
    ) -> None:
        self._store = store
        self._now = now
        self._expiration = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        now = self._now()
        await self._store.issue_oauth_state(state, now + self._expiration, now)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        return await self._store.consume_oauth_state(state, self._now())


class Bots:
    """Each workspace's bot from the installations. With token rotation turned on for the app
    (its installs then hold a refresh token), a bot token that expires within
    ``ROTATE_MINUTES`` is exchanged first (``oauth.v2.access``, ``grant_type=refresh_token``,
    through slack_sdk's ``AsyncTokenRotator``) and the new pair stored: an access token lasts 12
    hours, and each refresh token is good once (https://docs.slack.dev/authentication/
    using-token-rotation)."""

    # Bolt's own default (``token_rotation_expiration_minutes``).
    ROTATE_MINUTES = 120
    # The longest an exchange may take; past it the current token (still good) serves, and the
    # workspace's next try waits this long, so requests stay quick while Slack does not answer.
    ROTATE_SECONDS = 1.5
    RETRY_SECONDS = 60.0

    def __init__(
        self, installations: AsyncInstallationStore, rotator: AsyncTokenRotator | None = None
    ) -> None:
        self._installations = installations
        self._rotator = rotator
        self._locks: dict[tuple[str | None, str | None], asyncio.Lock] = {}
        self._failed: dict[tuple[str | None, str | None], float] = {}

    async def find(
        self,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        where = {"enterprise_id": enterprise_id, "team_id": team_id}
        org = is_enterprise_install
        bot = await self._installations.async_find_bot(**where, is_enterprise_install=org)
        key = (enterprise_id, team_id)
        if not self._due(bot) or self._rotator is None or self._resting(key):
            return bot
        # One exchange at a time per workspace in this process: the refresh token is good once.
        async with self._locks.setdefault(key, asyncio.Lock()):
            installation = await self._installations.async_find_installation(
                **where, is_enterprise_install=org
            )
            if installation is None or not self._due(installation.to_bot()):
                return None if installation is None else installation.to_bot()
            try:
                # Bolt asks before a request's acknowledgement, which Slack wants within 3 s.
                async with asyncio.timeout(self.ROTATE_SECONDS):
                    rotated = await self._rotator.perform_token_rotation(
                        installation=installation, minutes_before_expiration=self.ROTATE_MINUTES
                    )
            except (SlackTokenRotationError, aiohttp.ClientError, TimeoutError) as exc:
                # Another process may have used the refresh token first and stored the new pair;
                # or Slack is out of reach, and the current token serves until it expires.
                reason = (
                    exc.api_error.response.get("error")
                    if isinstance(exc, SlackTokenRotationError)
                    else type(exc).__name__
                )
                log.warning(
                    "Slack: could not renew the bot token of %s (%s)",
                    team_id or enterprise_id,
                    reason,
                )
                self._failed[key] = time.monotonic()
                return await self._installations.async_find_bot(**where, is_enterprise_install=org)
            if rotated is None:
                return installation.to_bot()
            await self._installations.async_save(rotated)
            log.info("Slack: renewed the bot token of %s", team_id or enterprise_id)
            return rotated.to_bot()

    def _resting(self, key: tuple[str | None, str | None]) -> bool:
        failed = self._failed.get(key)
        return failed is not None and time.monotonic() - failed < self.RETRY_SECONDS

    def _due(self, bot: Bot | None) -> bool:
        expires = bot.bot_token_expires_at if bot is not None else None
        return expires is not None and expires <= time.time() + self.ROTATE_MINUTES * 60


class InstallationTokens:
    """The ``TokenSource`` of OAuth mode: each workspace's bot token from the installations."""

    def __init__(self, bots: Bots) -> None:
        self._bots = bots

    async def bot_token(self, enterprise_id: str | None, team_id: str | None) -> str | None:
        bot = await self._bots.find(enterprise_id, team_id)
        return bot.bot_token if bot is not None else None


class StoredAuthorize(AsyncAuthorize):
    """Bolt's authorize in OAuth mode: the workspace's bot from the installations, and nothing
    more. Bolt's own ``AsyncInstallationStoreAuthorize`` also calls auth.test on every request
    before the ack; here a token Slack revoked is known from ``tokens_revoked`` and
    ``app_uninstalled`` instead, and no network call stands before the ack."""

    def __init__(self, bots: Bots) -> None:
        self._bots = bots

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        bot = await self._bots.find(enterprise_id, team_id, context.is_enterprise_install)
        if bot is None:
            return None
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id or team_id,
            user_id=user_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
        )
