"""Installations of the app in a platform's workspaces, as the store keeps them: sealed with a key
derived from IMAGINE_SECRET_KEY. The Slack adapter seals and opens whole installations with
``sealer_from_secret``; the core (the dashboard) reads one workspace's bot token and name with
``InstalledWorkspaces``, without any platform library."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.ports import Store

log = logging.getLogger(__name__)

# What the HKDF derivation is for: the same IMAGINE_SECRET_KEY gives other keys for other uses.
_KEY_PURPOSE = b"imagine-bot slack installations v1"


def sealer_from_secret(secret_key: str) -> Fernet:
    """A Fernet key derived from IMAGINE_SECRET_KEY (any length of 16 characters or more)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@dataclass(frozen=True)
class InstalledWorkspace:
    team_id: str
    name: str
    bot_token: str

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"InstalledWorkspace(team_id={self.team_id!r}, name={self.name!r})"


class InstalledWorkspaces:
    """One workspace's installation, read from the store on every call (an uninstall or a
    reinstall counts at once). The sealed JSON holds the installation's fields by name, as the
    Slack adapter writes them (slack_sdk's ``Installation``: ``bot_token``, ``team_name``)."""

    def __init__(self, store: Store, sealer: Fernet, platform: str) -> None:
        self._store = store
        self._sealer = sealer
        self._platform = platform

    async def find(self, team_id: str) -> InstalledWorkspace | None:
        """The workspace's own installation (outside an organisation), or None: not installed,
        uninstalled, sealed with another key, or without a bot token."""
        if not team_id:
            return None
        row = await self._store.find_installation(self._platform, "", team_id)
        if row is None:
            return None
        values = self.open(row.secret)
        token = values.get("bot_token") if values is not None else None
        if values is None or not isinstance(token, str) or not token:
            return None
        return InstalledWorkspace(team_id, str(values.get("team_name") or team_id), token)

    def open(self, secret: str) -> dict[str, Any] | None:
        """The installation's fields, or None when this key cannot open it."""
        try:
            values = json.loads(self._sealer.decrypt(secret.encode("ascii")))
        except (InvalidToken, ValueError):
            log.warning(
                "%s: an installation cannot be read with this IMAGINE_SECRET_KEY", self._platform
            )
            return None
        return values if isinstance(values, dict) else None
