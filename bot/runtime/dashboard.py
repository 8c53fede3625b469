"""The dashboard mounted on the bot's HTTP server from the settings (``open_app`` calls
``install_dashboard`` when IMAGINE_SECRET_KEY and a sign-in client are set, and closes it last)."""

from __future__ import annotations

import httpx

from bot.domain.clock import Clock
from bot.jobs.installations import InstalledWorkspaces, sealer_from_secret
from bot.jobs.service import ImagineService
from bot.net.server import HttpServer
from bot.ports import SignIn
from bot.providers.router import Router
from bot.runtime.config import Settings
from bot.store import Store
from bot.web.app import Dashboard, DashboardConfig
from bot.web.signin import DiscordSignIn


def install_dashboard(
    settings: Settings,
    *,
    server: HttpServer,
    http: httpx.AsyncClient,
    service: ImagineService,
    store: Store,
    router: Router,
    clock: Clock,
) -> Dashboard:
    signins: dict[str, SignIn] = {}
    if settings.discord_sign_in:
        # discord.py, which only the adapter package may import; loaded only when it is used.
        from adapters.discord.guilds import BotGuilds

        guilds = BotGuilds.from_settings(settings)
        signins["discord"] = DiscordSignIn(
            http,
            api_base=settings.discord_api_base,
            client_id=str(settings.discord_client_id),
            client_secret=settings.secret("DISCORD_CLIENT_SECRET") or "",
            guilds=guilds,
        )
    if settings.slack_sign_in:
        # On slack_sdk, which only the adapter package may import; loaded only when it is used.
        from adapters.slack.signin import SlackSignIn

        signins["slack"] = SlackSignIn(
            api_url=settings.slack_api_url,
            client_id=str(settings.slack_client_id),
            client_secret=settings.secret("SLACK_CLIENT_SECRET") or "",
            bot_token=settings.secret("SLACK_BOT_TOKEN"),
            # Workspaces that installed the app through OAuth, sealed with the same key as the
            # Slack adapter seals them (an empty table when the bot runs on SLACK_BOT_TOKEN).
            installations=InstalledWorkspaces(
                store, sealer_from_secret(settings.secret("IMAGINE_SECRET_KEY") or ""), "slack"
            ),
        )
    config = DashboardConfig(
        secret_key=settings.secret("IMAGINE_SECRET_KEY") or "",
        public_url=settings.public_url,
        owners=frozenset(settings.owners),
    )
    dashboard = Dashboard(
        config,
        signins=signins,
        service=service,
        store=store,
        router=router,
        clock=clock,
    )
    server.app.add_subapp("/dashboard", dashboard.web_app())
    return dashboard
