"""``imagine-bot doctor`` line for Discord: the token works, and the commands are registered."""

from __future__ import annotations

import httpx

from bot.config import Settings
from bot.doctor import register_check
from bot.httpclient import open_http_client


async def check_discord(settings: Settings) -> str:
    token = settings.secret("DISCORD_TOKEN")
    if not token:
        return "not configured"
    base = settings.discord_api_base.rstrip("/")
    headers = {"Authorization": f"Bot {token}"}
    async with open_http_client() as http:
        try:
            me = await http.get(f"{base}/users/@me", headers=headers, timeout=10.0)
            if me.status_code == 401:
                raise RuntimeError("DISCORD_TOKEN was refused (401): reset it in the portal")
            if me.status_code != 200:
                raise RuntimeError(f"Discord answered HTTP {me.status_code}")
            user = me.json()
            commands = await http.get(
                f"{base}/applications/{user['id']}/commands", headers=headers, timeout=10.0
            )
        except httpx.HTTPError as exc:
            raise RuntimeError(f"cannot reach {base}: {type(exc).__name__}") from None
    names = (
        sorted(c.get("name", "") for c in commands.json()) if commands.status_code == 200 else []
    )
    registered = (
        f"global commands: {', '.join('/' + n for n in names)}"
        if "imagine" in names
        else "/imagine is not registered globally: run imagine-bot sync-commands"
    )
    return f"logged in as {user.get('username')} ({user['id']}); {registered}"


def register_doctor_check() -> None:
    register_check("discord", check_discord)
