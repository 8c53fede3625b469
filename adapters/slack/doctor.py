"""``imagine-bot doctor`` for Slack: the bot token works and carries the scopes the bot needs."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime.config import Settings

# What slack-manifest.yml asks for; see docs/slack.md for what each is used for.
REQUIRED_SCOPES = frozenset({"commands", "chat:write", "files:read", "files:write", "users:read"})
# Asked for on an OAuth install: the above, app_mentions:read ("@Imagine ..." in threads),
# im:write (private images in the user's DM) and im:history (messages to the bot).
INSTALL_SCOPES = REQUIRED_SCOPES | {"app_mentions:read", "im:write", "im:history"}
# Without these the bot runs, with one thing fewer it can do (what doctor says).
OPTIONAL_SCOPES = {
    "app_mentions:read": "@mentions in channels and threads go unseen",
    "im:write": "private images (--private) cannot be sent to the user's DM",
    "im:history": "messages to the bot in its Messages tab go unseen",
}


async def check_slack(settings: Settings) -> str:
    """One line on the Slack set-up; raises RuntimeError saying what to fix."""
    token = settings.secret("SLACK_BOT_TOKEN") or ""
    app_token = settings.secret("SLACK_APP_TOKEN")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        client = AsyncWebClient(token=token, base_url=settings.slack_api_url, session=session)
        try:
            me = await client.auth_test()
        except SlackApiError as exc:
            raise RuntimeError(
                f"SLACK_BOT_TOKEN refused by Slack ({exc.response.get('error')})"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeError(
                f"{settings.slack_api_url} unreachable ({type(exc).__name__})"
            ) from None
        granted = {s.strip() for s in str(me.headers.get("x-oauth-scopes", "")).split(",")}
        missing = sorted(REQUIRED_SCOPES - granted) if granted != {""} else []
        if missing:
            raise RuntimeError(
                f"the bot token lacks the scopes {', '.join(missing)}: add them (see "
                "slack-manifest.yml) and reinstall the app"
            )
        mode = "HTTP mode at /slack/events"
        if app_token:
            try:
                await client.apps_connections_open(app_token=app_token)
            except SlackApiError as exc:
                raise RuntimeError(
                    f"SLACK_APP_TOKEN refused by Slack ({exc.response.get('error')}); it needs "
                    "the connections:write scope"
                ) from None
            mode = "Socket Mode"
    line = f"signed in to team {me.get('team')} as {me.get('user')}, {mode}"
    lacking = (
        [scope for scope in OPTIONAL_SCOPES if scope not in granted] if granted != {""} else []
    )
    if lacking:
        why = "; ".join(f"without {scope}, {OPTIONAL_SCOPES[scope]}" for scope in lacking)
        line += f" ({why}: add the scopes from slack-manifest.yml and reinstall the app)"
    return line
