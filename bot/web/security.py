"""Sessions, security headers, CSRF tokens and the sign-in rate limit of the dashboard."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.domain.clock import Clock

COOKIE_NAME = "imagine_dashboard"
# A session unused for a day expires: every request re-issues the cookie (see ``touch``), and the
# cookie's encryption timestamp older than this is refused by Fernet's ttl.
IDLE_SECONDS = 24 * 3600
CSRF_FIELD = "csrf_token"
_CSRF_KEY = "csrf"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_key(secret: str) -> bytes:
    """The cookie key, derived from IMAGINE_SECRET_KEY so the same secret never serves two uses
    directly (it also encrypts stored platform tokens)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"imagine-bot dashboard session"
    )
    # 32 raw bytes: aiohttp-session encodes them into a Fernet key itself.
    return hkdf.derive(secret.encode())


def session_storage(secret: str, *, secure: bool) -> EncryptedCookieStorage:
    """Encrypted, signed cookies (Fernet), HttpOnly and SameSite=Lax; Secure on https."""
    return EncryptedCookieStorage(
        session_key(secret),
        cookie_name=COOKIE_NAME,
        max_age=IDLE_SECONDS,
        path="/dashboard",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def content_security_policy() -> str:
    # Only our own stylesheet; no script at all; forms post only back here; never framed.
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _add_headers(response)
        raise
    _add_headers(response)
    return response


def _add_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use; every form carries it."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


def csrf_ok(session: Session, form: Mapping[str, object]) -> bool:
    expected = session.get(_CSRF_KEY)
    given = form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class SignInLimiter:
    """At most ``count`` sign-in starts per ``period`` seconds from one client address (a fixed
    window, kept in this process: enough to keep one client from hammering the OAuth providers)."""

    def __init__(self, clock: Clock, count: int = 10, period: float = 60.0) -> None:
        self._clock = clock
        self._count = count
        self._period = period
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, client: str) -> bool:
        now = self._clock.now()
        start, used = self._windows.get(client, (now, 0))
        if now - start >= self._period:
            start, used = now, 0
        if used >= self._count:
            return False
        if len(self._windows) > 10_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self._period}
        self._windows[client] = (start, used + 1)
        return True
