"""A community's settings on the dashboard: every setting the admin commands change, changed
through the same grammar and service call, audited as made on the dashboard; bad input changes
nothing and is explained."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from markupsafe import escape

from bot.domain.community_settings import SETTINGS
from bot.store.base import AuditQuery
from bot.web.security import COOKIE_NAME, session_key
from tests.store_helpers import save_settings
from tests.web.conftest import ADMIN, GUILD, MEMBER, OTHER_GUILD, SECRET, Site


async def _post(site: Site, name: str, **form: str) -> tuple[int, str]:
    token = await site.csrf(f"/dashboard/c/{GUILD}")
    response = await site.client.post(
        f"/dashboard/c/{GUILD}/settings/{name}", data={"csrf_token": token, **form}
    )
    return response.status, await response.text()


async def _audit(site: Site, **filters: str) -> list[tuple[str, str, str, str]]:
    entries = await site.app.store.search_audit(AuditQuery(GUILD, **filters))  # type: ignore[arg-type]
    return [(e.kind, e.action, e.detail, e.origin) for e in entries]


async def test_the_page_has_a_form_for_every_setting(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    page = await (await site.client.get(f"/dashboard/c/{GUILD}")).text()
    for name in SETTINGS:
        assert f'<section class="setting" id="{name}">' in page
        assert f'action="/dashboard/c/{GUILD}/settings/{name}"' in page
    assert page.count('name="csrf_token"') >= len(SETTINGS)


@pytest.mark.parametrize(
    ("name", "form", "stored", "line"),
    [
        ("limits", {"op": "set", "daily": "3"}, ("user_limits", "daily", 3), "limits for every user: daily 3"),
        ("limits", {"op": "set", "key": "1700000000000000007", "rate": "2/minute"}, None, "limits for role 1700000000000000007: rate 2/minute"),
        ("safety", {"op": "set", "value": "strict"}, ("safety_level", None, "strict"), "safety level set to strict"),
        ("channel-safety", {"op": "set", "key": "1300000000000000003", "value": "relaxed"}, None, "channel 1300000000000000003: safety level set to relaxed"),
        ("server-daily", {"op": "set", "value": "40"}, ("community_daily", None, 40), "server daily quota set to 40 images"),
        ("budget", {"op": "set", "value": "2.50"}, ("community_budget_usd", None, 2.5), "server daily budget set to $2.50"),
        ("model", {"op": "set", "value": "pro"}, ("default_variant", None, "pro"), "default model set to pro"),
        ("input-images", {"op": "set", "value": "off"}, ("allow_input_images", None, False), "input images off"),
        ("cache", {"op": "set", "value": "off"}, ("allow_cache", None, False), "cache off"),
        ("admins-exempt", {"op": "set", "value": "off"}, ("admins_exempt", None, False), "admins follow user limits"),
        ("channels", {"op": "add", "item": "1300000000000000003"}, ("allowed_channels", None, ("1300000000000000003",)), "channel 1300000000000000003 allowed"),
        ("blocked", {"op": "add", "item": "Dragon  Egg"}, ("blocked_terms", None, ("Dragon Egg",)), "blocked term added: 'Dragon Egg'"),
        ("banned", {"op": "add", "item": MEMBER}, ("banned_users", None, (MEMBER,)), f"user {MEMBER} banned from /imagine"),
        ("admin-roles", {"op": "add", "item": "1700000000000000007"}, ("admin_roles", None, ("1700000000000000007",)), "role 1700000000000000007 made bot admin"),
        ("admin-users", {"op": "add", "item": MEMBER}, ("admin_users", None, (MEMBER,)), f"user {MEMBER} made bot admin"),
    ],
)  # fmt: skip
async def test_each_setting_changes_through_the_service_and_is_audited(
    site: Site,
    name: str,
    form: dict[str, str],
    stored: tuple[str, str | None, object] | None,
    line: str,
) -> None:
    await site.sign_in("discord", ADMIN)
    status, page = await _post(site, name, **form)
    assert status == 200, page
    assert str(escape(f"Done: {line}.")) in page
    settings = await site.app.service.get_settings(GUILD)
    if stored is not None:
        field, part, value = stored
        current = getattr(settings, field)
        assert (getattr(current, part) if part else current) == value
    kind, _, detail, origin = (await _audit(site))[0]
    assert (kind, detail, origin) == ("change", line, "dashboard")


async def test_list_entries_are_removed_and_lists_cleared(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    await _post(site, "blocked", op="add", item="dragon")
    await _post(site, "blocked", op="add", item="wyvern")
    page = await (await site.client.get(f"/dashboard/c/{GUILD}")).text()
    assert "<span>dragon</span>" in page and "<span>wyvern</span>" in page
    status, _ = await _post(site, "blocked", op="remove", item="dragon")
    assert status == 200
    assert (await site.app.service.get_settings(GUILD)).blocked_terms == ("wyvern",)
    await _post(site, "blocked", op="clear")
    assert (await site.app.service.get_settings(GUILD)).blocked_terms == ()
    await _post(site, "limits", op="set", daily="3")
    await _post(site, "limits", op="clear")
    assert (await site.app.service.get_settings(GUILD)).user_limits.daily is None


@pytest.mark.parametrize(
    ("name", "form", "message"),
    [
        ("limits", {"op": "set", "daily": "lots"}, "daily is a whole number or off; got 'lots'."),
        ("limits", {"op": "set", "daily": "2000000"}, "The daily quota must be a whole number from 0 to 1,000,000 (or unlimited)."),
        ("limits", {"op": "set", "rate": "5/fortnight"}, "rate:"),
        ("budget", {"op": "set", "value": "-3"}, "The budget is 0 to 1,000,000 US dollars a day (or unlimited)."),
        ("safety", {"op": "set", "value": "9"}, "safety"),
        ("model", {"op": "set", "value": "nonsense"}, "Unknown model 'nonsense'."),
        ("blocked", {"op": "add", "item": "x" * 101}, "A blocked term is 1 to 100 characters."),
        ("channels", {"op": "remove", "item": "1300000000000000003"}, "Every channel is allowed now."),
        ("nonsense", {"op": "set", "value": "1"}, "That form does not change a known setting."),
    ],
)  # fmt: skip
async def test_values_the_commands_refuse_are_refused_with_their_message(
    site: Site, name: str, form: dict[str, str], message: str
) -> None:
    await site.sign_in("discord", ADMIN)
    before = await site.app.service.get_settings(GUILD)
    status, page = await _post(site, name, **form)
    assert status == 400
    assert 'class="error"' in page and str(escape(message)) in page
    assert await site.app.service.get_settings(GUILD) == before
    kind, _, detail, origin = (await _audit(site))[0]
    assert (kind, origin) == ("invalid", "dashboard") and message in detail
    if name in ("limits", "budget"):  # text boxes keep what was typed
        typed = next(v for k, v in form.items() if k != "op")
        assert f'value="{escape(typed)}"' in page


async def test_a_full_word_list_refuses_one_more_term(site: Site) -> None:
    settings = await site.app.service.get_settings(GUILD)
    full = tuple(f"term{i}" for i in range(500))
    await save_settings(site.app.store, settings.evolve(blocked_terms=full), 0.0)
    await site.sign_in("discord", ADMIN)
    status, page = await _post(site, "blocked", op="add", item="one more")
    assert status == 400 and "The word list holds at most 500 terms." in page
    assert len((await site.app.service.get_settings(GUILD)).blocked_terms) == 500


async def test_a_form_without_or_with_a_wrong_csrf_token_changes_nothing(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    before = await site.app.service.get_settings(GUILD)
    for data in ({"op": "set", "daily": "1"}, {"op": "set", "daily": "1", "csrf_token": "forged"}):
        response = await site.client.post(f"/dashboard/c/{GUILD}/settings/limits", data=data)
        assert response.status == 403
        assert "not sent from this page" in await response.text()
    assert await site.app.service.get_settings(GUILD) == before
    denied = await _audit(site, kind="denied")
    assert len(denied) == 2 and all(d[3] == "dashboard" and "CSRF" in d[2] for d in denied)


async def test_a_foreign_community_is_refused_and_audited(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    token = await site.csrf(f"/dashboard/c/{GUILD}")
    for path in (f"/dashboard/c/{OTHER_GUILD}", f"/dashboard/c/{OTHER_GUILD}/audit"):
        assert (await site.client.get(path)).status == 403
    response = await site.client.post(
        f"/dashboard/c/{OTHER_GUILD}/settings/limits",
        data={"csrf_token": token, "op": "set", "daily": "0"},
    )
    assert response.status == 403
    assert (await site.app.service.get_settings(OTHER_GUILD)).user_limits.daily is None
    entries = await site.app.store.search_audit(AuditQuery(OTHER_GUILD))
    assert {e.action for e in entries} == {"read_settings", "read_audit_log", "dashboard_limits"}
    assert all(e.kind == "denied" and e.actor_id == ADMIN for e in entries)
    # An id the bot does not know: refused, and no audit log is started for it.
    assert (await site.client.get("/dashboard/c/999")).status == 403
    assert await site.app.store.search_audit(AuditQuery("999")) == []


async def test_losing_manage_server_loses_the_pages_at_the_next_request(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 200
    site.discord.guilds[GUILD].members[ADMIN] = []
    assert (await site.client.get(f"/dashboard/c/{GUILD}")).status == 403
    status, _ = await _post(site, "limits", op="set", daily="1")
    assert status == 403
    assert (await site.app.service.get_settings(GUILD)).user_limits.daily is None
    denied = await _audit(site, kind="denied", actor_id=ADMIN)
    assert denied and denied[0][3] == "dashboard"


async def test_bot_admins_cannot_change_who_the_admins_are(site: Site) -> None:
    settings = await site.app.service.get_settings(GUILD)
    await save_settings(site.app.store, settings.evolve(admin_users=(MEMBER,)), 0.0)
    await site.sign_in("discord", MEMBER)
    status, page = await _post(site, "admin-users", op="add", item="1500000000000000042")
    assert status == 403
    assert "Only the server&#39;s own administrators" in page
    assert (await site.app.service.get_settings(GUILD)).admin_users == (MEMBER,)


async def test_an_expired_session_is_signed_out(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    jar = site.client.session.cookie_jar
    cookie = next(c for c in jar if c.key == COOKIE_NAME)
    fernet = Fernet(__import__("base64").urlsafe_b64encode(session_key(SECRET)))
    stale = fernet.encrypt_at_time(
        fernet.decrypt(cookie.value.encode()), int(time.time()) - 25 * 3600
    )
    jar.update_cookies({COOKIE_NAME: stale.decode()}, site.client.make_url("/dashboard/"))
    response = await site.client.get(f"/dashboard/c/{GUILD}")
    assert response.status == 401
    assert "Your session has ended" in await response.text()


async def test_the_audit_log_is_paged_and_filtered(site: Site) -> None:
    await site.sign_in("discord", ADMIN)
    for n in range(55):
        await site.app.service.note_attempt(
            GUILD, f"user{n % 2}", kind="refusal", action="banned", detail=f"n{n}", origin=""
        )
    await _post(site, "budget", op="set", value="3")
    first = await (await site.client.get(f"/dashboard/c/{GUILD}/audit")).text()
    assert first.count("<tr class=") == 50
    assert "server daily budget set to $3.00" in first and "dashboard</td>" in first
    older = first.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await (await site.client.get(older)).text()
    assert second.count("<tr class=") == 56 - 50
    only = await (await site.client.get(f"/dashboard/c/{GUILD}/audit?kind=change")).text()
    assert only.count("<tr class=") == 1
    mine = await (await site.client.get(f"/dashboard/c/{GUILD}/audit?actor=user1")).text()
    assert mine.count("<tr class=") == 27
    bad = await site.client.get(f"/dashboard/c/{GUILD}/audit?kind=nonsense")
    assert bad.status == 400
