"""CSRF tokens, the session key and the sign-in limiter."""

from __future__ import annotations

from aiohttp_session import Session

from bot.web.security import SignInLimiter, csrf_ok, csrf_token, session_key


class Clock:
    def __init__(self) -> None:
        self.at = 1000.0

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return self.at


def test_a_csrf_token_is_made_once_and_must_match() -> None:
    session = Session(None, data=None, new=True)
    token = csrf_token(session)
    assert csrf_token(session) == token and len(token) >= 40
    assert csrf_ok(session, {"csrf_token": token})
    assert not csrf_ok(session, {"csrf_token": token[:-1] + "x"})
    assert not csrf_ok(session, {})
    assert not csrf_ok(Session(None, data=None, new=True), {"csrf_token": token})


def test_the_session_key_is_derived_not_the_secret_itself() -> None:
    key = session_key("a-test-secret-key-of-enough-length")
    assert len(key) == 32 and b"a-test-secret" not in key
    assert key != session_key("another-secret-key-of-some-length")


def test_sign_in_starts_are_limited_per_client_and_window() -> None:
    clock = Clock()
    limiter = SignInLimiter(clock, count=2, period=60.0)  # type: ignore[arg-type]
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
    clock.at += 60
    assert limiter.allow("a")


def test_the_cookie_is_secure_on_https_and_never_readable_by_scripts() -> None:
    from bot.web.security import session_storage

    for secure in (True, False):
        params = session_storage("a-test-secret-key-of-enough-length", secure=secure).cookie_params
        assert params["secure"] is secure
        assert params["httponly"] is True and params["samesite"] == "Lax"
        assert params["max_age"] == 24 * 3600 and params["path"] == "/dashboard"
