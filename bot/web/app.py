"""The dashboard's routes under ``/dashboard``: sign-in, the community list, a community's
settings, audit log and usage, and the bot-owner page. Every page that shows or changes a
community re-checks the user's admin rights first (with the bot's token and the community's own
admin lists), and every change goes through ``ImagineService.update_settings``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from bot.domain.clock import Clock
from bot.domain.community import Actor
from bot.domain.errors import InvalidRequest, PolicyRefusal
from bot.jobs.service import ImagineService
from bot.ports import Community, SignedIn, SignIn, SignInFailed
from bot.providers.router import Router
from bot.store import Store
from bot.store.base import AuditQuery
from bot.text import replies
from bot.web import forms
from bot.web.charts import usage_charts
from bot.web.security import (
    CSRF_FIELD,
    SignInLimiter,
    csrf_ok,
    csrf_token,
    security_headers,
    session_storage,
)

log = logging.getLogger(__name__)

ORIGIN = "dashboard"
AUDIT_PAGE = 50
AUDIT_KINDS = ("change", "denied", "invalid", "refusal")
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DashboardConfig:
    secret_key: str
    # The public base URL (IMAGINE_PUBLIC_URL); OAuth redirects come back to
    # <base>/dashboard/auth/<platform>. Unset: the address the browser used for this server.
    public_url: str | None
    owners: frozenset[str]  # "discord:<id>", "slack:<id>"


@dataclass(frozen=True)
class User:
    platform: str
    id: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


class Dashboard:
    def __init__(
        self,
        config: DashboardConfig,
        *,
        signins: Mapping[str, SignIn],
        service: ImagineService,
        store: Store,
        router: Router,
        clock: Clock,
    ) -> None:
        self._config = config
        self._signins = dict(signins)
        self._service = service
        self._store = store
        self._router = router
        self._clock = clock
        self._limiter = SignInLimiter(clock)

    async def aclose(self) -> None:
        for signin in self._signins.values():
            await signin.aclose()

    def web_app(self) -> web.Application:
        app = web.Application(middlewares=[security_headers])
        secure = (self._config.public_url or "").startswith("https://")
        aiohttp_session.setup(app, session_storage(self._config.secret_key, secure=secure))
        env = aiohttp_jinja2.setup(
            app,
            loader=jinja2.PackageLoader("bot.web", "templates"),
            autoescape=jinja2.select_autoescape(("html",), default=True),
            context_processors=[self._context],
        )
        env.globals["csrf_field"] = CSRF_FIELD
        app.router.add_static("/static", HERE / "static", name="static")
        app.router.add_get("/", self.home, name="home")
        app.router.add_get("/login/{platform}", self.login, name="login")
        app.router.add_get("/auth/{platform}", self.auth, name="auth")
        app.router.add_post("/logout", self.logout, name="logout")
        app.router.add_get("/owner", self.owner, name="owner")
        app.router.add_get("/c/{cid}", self.community, name="community")
        app.router.add_post("/c/{cid}/settings/{name}", self.change, name="change")
        app.router.add_get("/c/{cid}/audit", self.audit, name="audit")
        app.router.add_get("/c/{cid}/usage", self.usage, name="usage")
        return app

    # Shared -------------------------------------------------------------------------------------

    async def _context(self, request: web.Request) -> dict[str, Any]:
        session = await aiohttp_session.get_session(request)
        user = _user(session)
        if user is not None:
            # Idle expiry: a request re-issues the cookie, so it lasts a day after the last one.
            session.changed()
        return {"user": user, "csrf": csrf_token(session), "signins": self._signins}

    def _page(
        self, request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        return aiohttp_jinja2.render_template(template, request, context, status=status)

    def _error(self, request: web.Request, status: int, title: str, message: str) -> web.Response:
        return self._page(request, "error.html", status, title=title, message=message)

    def _not_yours(self, request: web.Request) -> web.Response:
        return self._error(
            request,
            403,
            "Not yours",
            "You do not administer that community with the bot, or the bot is not in it.",
        )

    async def _signed_in(self, request: web.Request) -> User | None:
        """The session's user, if their platform's sign-in is still configured."""
        user = _user(await aiohttp_session.get_session(request))
        return user if user is not None and user.platform in self._signins else None

    async def _admin_of(
        self, request: web.Request, action: str
    ) -> tuple[User, Community, Actor] | web.Response:
        """The signed-in user's admin standing in the URL's community, checked now; a page
        explaining why not otherwise (refusals that name a real community are audited)."""
        user = await self._signed_in(request)
        if user is None:
            return self._error(
                request, 401, "Please sign in", "Your session has ended. Sign in again."
            )
        cid = request.match_info["cid"]
        signin = self._signins[user.platform]
        try:
            membership = await signin.membership(cid, user.id)
            community = await signin.community(cid) if membership is not None else None
        except SignInFailed as exc:
            return self._error(request, 502, "Try again", exc.message)
        if membership is None or community is None:
            if await signin.community(cid) is not None:
                await self._service.note_attempt(
                    cid,
                    user.id,
                    kind="denied",
                    action=action,
                    detail="refused (not a member)",
                    origin=ORIGIN,
                )
            return self._not_yours(request)
        actor = Actor(user.id, membership.role_ids, membership.is_platform_admin, user.name)
        try:
            await self._service.require_admin(cid, actor, action, origin=ORIGIN)
        except PolicyRefusal:
            return self._not_yours(request)
        return user, community, actor

    # Sign-in ------------------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        user = await self._signed_in(request)
        if user is None:
            return self._page(request, "signin.html")
        session = await aiohttp_session.get_session(request)
        candidates = [Community(user.platform, c[0], c[1]) for c in session.get("c", [])]
        signin = self._signins[user.platform]

        async def administers(community: Community) -> bool:
            membership = await signin.membership(community.id, user.id)
            if membership is None:
                return False
            actor = Actor(user.id, membership.role_ids, membership.is_platform_admin)
            return await self._service.is_admin(community.id, actor)

        try:
            allowed = await asyncio.gather(*(administers(c) for c in candidates))
        except SignInFailed as exc:
            return self._error(request, 502, "Try again", exc.message)
        communities = [c for c, ok in zip(candidates, allowed, strict=True) if ok]
        return self._page(
            request, "communities.html", communities=communities, owner=await self._is_owner(user)
        )

    async def login(self, request: web.Request) -> web.Response:
        signin = self._signins.get(request.match_info["platform"])
        if signin is None:
            return self._error(request, 404, "Not found", "There is no such sign-in here.")
        if not self._limiter.allow(request.remote or "?"):
            return self._error(
                request, 429, "Slow down", "Too many sign-in attempts; wait a minute."
            )
        session = await aiohttp_session.new_session(request)
        state = secrets.token_urlsafe(24)
        session["state"] = state
        redirect = self._redirect_uri(request, signin.platform)
        raise web.HTTPFound(signin.authorize_url(state, redirect))

    def _redirect_uri(self, request: web.Request, platform: str) -> str:
        base = self._config.public_url or str(request.url.origin())
        return f"{base.rstrip('/')}/dashboard/auth/{platform}"

    async def auth(self, request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        signin = self._signins.get(platform)
        if signin is None:
            return self._error(request, 404, "Not found", "There is no such sign-in here.")
        session = await aiohttp_session.get_session(request)
        expected = session.pop("state", None)
        query = request.query
        if "error" in query:
            denied = query["error"] == "access_denied"
            message = (
                f"You did not allow the dashboard to see your {signin.label} account."
                if denied
                else f"{signin.label} could not sign you in ({query['error'][:60]})."
            )
            return self._error(request, 400, "Not signed in", message)
        state = query.get("state", "")
        if not isinstance(expected, str) or not secrets.compare_digest(state, expected):
            return self._error(
                request,
                400,
                "Not signed in",
                "This sign-in link is out of date or was not started here. Please sign in again.",
            )
        code = query.get("code", "")
        if not code:
            return self._error(
                request, 400, "Not signed in", "The sign-in came back without a code."
            )
        try:
            signed = await signin.finish(code, self._redirect_uri(request, platform))
        except SignInFailed as exc:
            return self._error(request, 502, "Not signed in", exc.message)
        _remember(session, signed)
        log.info("dashboard: %s user %s signed in", platform, signed.user_id)
        raise web.HTTPSeeOther(request.app.router["home"].url_for())

    async def logout(self, request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        if not csrf_ok(session, await request.post()):
            return self._error(request, 403, "Refused", "That form has expired; reload the page.")
        session.invalidate()
        raise web.HTTPSeeOther(request.app.router["home"].url_for())

    # A community ---------------------------------------------------------------------------------

    async def community(self, request: web.Request) -> web.Response:
        checked = await self._admin_of(request, "read_settings")
        if isinstance(checked, web.Response):
            return checked
        return await self._settings_page(request, checked[1])

    async def _settings_page(
        self,
        request: web.Request,
        community: Community,
        *,
        status: int = 200,
        error: tuple[str, str] | None = None,
        posted: Mapping[str, str] | None = None,
    ) -> web.Response:
        session = await aiohttp_session.get_session(request)
        settings = await self._service.get_settings(community.id)
        defaults = self._service.policy_defaults
        return self._page(
            request,
            "community.html",
            status,
            community=community,
            views=forms.setting_views(settings, self._service.catalog),
            overview=replies.settings_lines(
                settings, defaults.limits, self._service.catalog.default_variant
            ),
            done=session.pop("done", None),
            error=error,
            posted=posted or {},
        )

    async def change(self, request: web.Request) -> web.Response:
        form = await request.post()
        session = await aiohttp_session.get_session(request)
        name = request.match_info["name"]
        op = str(form.get("op", ""))
        checked = await self._admin_of(request, f"dashboard_{name}")
        if isinstance(checked, web.Response):
            return checked
        user, community, actor = checked
        if not csrf_ok(session, form):
            await self._service.note_attempt(
                community.id,
                user.id,
                kind="denied",
                action=f"{name}:{op}" if op else name,
                detail="refused: the form's CSRF token was missing or wrong",
                origin=ORIGIN,
            )
            return self._error(
                request, 403, "Refused", "That form has expired or was not sent from this page."
            )
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            change = forms.change_from_form(name, op, fields)
            done = await self._service.update_settings(community.id, actor, change, origin=ORIGIN)
        except InvalidRequest as exc:
            await self._service.note_attempt(
                community.id,
                user.id,
                kind="invalid",
                action=f"{name}:{op}",
                detail=f"refused: {exc.user_message}",
                origin=ORIGIN,
            )
            return await self._settings_page(
                request,
                community,
                status=400,
                error=(name, exc.user_message),
                posted={k: v for k, v in fields.items() if k != CSRF_FIELD} | {"op": op},
            )
        except PolicyRefusal as exc:
            return self._error(request, 403, "Refused", exc.user_message)
        session["done"] = [name, done.message]
        raise web.HTTPSeeOther(
            request.app.router["community"].url_for(cid=community.id).with_fragment(name)
        )

    async def audit(self, request: web.Request) -> web.Response:
        checked = await self._admin_of(request, "read_audit_log")
        if isinstance(checked, web.Response):
            return checked
        _, community, actor = checked
        query = request.query
        kind = query.get("kind", "")
        before = query.get("before", "0")
        if kind not in ("", *AUDIT_KINDS) or not before.isdigit():
            return self._error(request, 400, "Bad filter", "That audit log filter is not valid.")
        page = AuditQuery(
            community.id,
            limit=AUDIT_PAGE + 1,
            before_id=int(before),
            actor_id=query.get("actor", "").strip()[:100],
            kind=kind,
        )
        entries = await self._service.audit_page(page, actor, origin=ORIGIN)
        more = len(entries) > AUDIT_PAGE
        entries = entries[:AUDIT_PAGE]
        return self._page(
            request,
            "audit.html",
            community=community,
            entries=entries,
            kinds=AUDIT_KINDS,
            kind=kind,
            actor=page.actor_id,
            next_before=entries[-1].id if more and entries else None,
            when=_when,
        )

    async def usage(self, request: web.Request) -> web.Response:
        checked = await self._admin_of(request, "read_usage")
        if isinstance(checked, web.Response):
            return checked
        _, community, actor = checked
        report = await self._service.usage_report(community.id, actor, origin=ORIGIN)
        return self._page(
            request, "usage.html", community=community, report=report, **usage_charts(report)
        )

    # The bot owner ------------------------------------------------------------------------------

    async def _is_owner(self, user: User) -> bool:
        if user.key in self._config.owners:
            return True
        try:
            return user.id in await self._signins[user.platform].application_owners()
        except SignInFailed:
            return False

    async def owner(self, request: web.Request) -> web.Response:
        user = await self._signed_in(request)
        if user is None:
            return self._error(request, 401, "Please sign in", "Your session has ended.")
        if not await self._is_owner(user):
            return self._error(request, 403, "Refused", "This page is for the bot's owners.")
        since = (int(self._clock.now() // 86_400) - 29) * 86_400.0
        errors = {e.provider: e for e in await self._store.last_provider_errors(since)}
        providers = [
            (name, self._router.breaker.state(name), errors.get(name))
            for name in self._router.names
        ]
        return self._page(
            request,
            "owner.html",
            when=_when,
            providers=providers,
            queue=await self._store.job_counts(),
            spend=await self._store.spend_by_provider(since),
        )


def _user(session: aiohttp_session.Session) -> User | None:
    raw = session.get("u")
    if not isinstance(raw, list) or len(raw) != 3:
        return None
    return User(str(raw[0]), str(raw[1]), str(raw[2]))


def _remember(session: aiohttp_session.Session, signed: SignedIn) -> None:
    session.clear()
    session["u"] = [signed.platform, signed.user_id, signed.name[:100]]
    session["c"] = [[c.id, c.name[:100]] for c in signed.candidates]
    session["csrf"] = secrets.token_urlsafe(32)


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
