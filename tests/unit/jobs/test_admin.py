"""Administration: the defaults until a community changes anything, changes by admins only (and
admin management by the platform's admins only), every change and refusal in the audit log, the
word list and the log itself for admins only."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.community import Actor, AddItem, SetValue
from bot.domain.community_settings import ADMIN_ROLES, BLOCKED_TERMS, SAFETY
from bot.domain.errors import PolicyRefusal
from bot.jobs.admin import MAX_AUDIT_ENTRIES, Admin
from bot.store.base import AuditQuery

OWNER = Actor("owner", is_platform_admin=True)
MOD = Actor("mod", role_ids=("r-mod",))
MEMBER = Actor("member")


@pytest.fixture
def admin(service_parts: dict[str, Any]) -> Admin:
    parts = service_parts
    return Admin(
        store=parts["store"], catalog=parts["catalog"], clock=parts["clock"], policy=parts["policy"]
    )


async def test_a_community_starts_with_the_defaults(admin: Admin) -> None:
    settings = await admin.get_settings("g1")
    assert (settings.community_id, settings.safety_level) == ("g1", "standard")
    assert not await admin.is_admin("g1", MEMBER)
    assert await admin.is_admin("g1", OWNER)


async def test_changes_are_made_by_admins_and_audited(admin: Admin) -> None:
    done = await admin.update_settings("g1", OWNER, SetValue(SAFETY, "strict"))
    assert done.settings.safety_level == "strict" and done.message.startswith("Done: ")
    with pytest.raises(PolicyRefusal) as refused:
        await admin.update_settings("g1", MEMBER, SetValue(SAFETY, "adult"))
    assert refused.value.code == "not_admin"
    assert (await admin.get_settings("g1")).safety_level == "strict"
    log = await admin.audit_log("g1", OWNER)
    assert [(e.kind, e.actor_id) for e in log] == [("denied", "member"), ("change", "owner")]


async def test_an_admin_role_may_not_choose_the_admins(admin: Admin) -> None:
    await admin.update_settings("g1", OWNER, AddItem(ADMIN_ROLES, "r-mod"))
    await admin.update_settings("g1", MOD, AddItem(BLOCKED_TERMS, "wyvern"))
    with pytest.raises(PolicyRefusal, match="own administrators"):
        await admin.update_settings("g1", MOD, AddItem(ADMIN_ROLES, "r-fan"))
    assert (await admin.get_settings("g1")).admin_roles == ("r-mod",)


async def test_the_word_list_and_the_log_are_for_admins_only(admin: Admin) -> None:
    await admin.update_settings("g1", OWNER, AddItem(BLOCKED_TERMS, "wyvern"))
    assert await admin.blocked_terms("g1", OWNER) == ("wyvern",)
    with pytest.raises(PolicyRefusal):
        await admin.blocked_terms("g1", MEMBER)
    with pytest.raises(PolicyRefusal):
        await admin.audit_log("g1", MEMBER)
    with pytest.raises(PolicyRefusal):
        await admin.require_admin("g1", MEMBER, "open_dashboard")
    log = await admin.audit_log("g1", OWNER, limit=10 * MAX_AUDIT_ENTRIES)
    assert [e.action for e in log if e.kind == "denied"] == [
        "open_dashboard",
        "read_audit_log",
        "list_blocked_terms",
    ]


async def test_changes_and_refusals_carry_where_they_were_made(admin: Admin) -> None:
    await admin.update_settings("g1", OWNER, SetValue(SAFETY, "strict"), origin="dashboard")
    with pytest.raises(PolicyRefusal):
        await admin.update_settings("g1", MEMBER, SetValue(SAFETY, "adult"), origin="dashboard")
    with pytest.raises(PolicyRefusal):
        await admin.require_admin("g1", MEMBER, "open_dashboard", origin="dashboard")
    await admin.note_attempt(
        "g1", "member", kind="denied", action="form", detail="bad token", origin="dashboard"
    )
    await admin.update_settings("g1", OWNER, AddItem(BLOCKED_TERMS, "wyvern"))  # a chat command
    log = await admin.audit_log("g1", OWNER)
    assert [(e.kind, e.action, e.origin) for e in log] == [
        ("change", BLOCKED_TERMS.add_action, ""),
        ("denied", "form", "dashboard"),
        ("denied", "open_dashboard", "dashboard"),
        ("denied", SAFETY.action, "dashboard"),
        ("change", SAFETY.action, "dashboard"),
    ]


async def test_audit_pages_are_for_admins_only_and_capped(admin: Admin) -> None:
    for i in range(5):
        await admin.update_settings("g1", OWNER, AddItem(BLOCKED_TERMS, f"t{i}"))
    first = await admin.audit_page(AuditQuery("g1", limit=2), OWNER)
    assert [e.detail for e in first] == ["blocked term added: 't4'", "blocked term added: 't3'"]
    rest = await admin.audit_page(AuditQuery("g1", limit=0, before_id=first[-1].id), OWNER)
    assert len(rest) == 1  # a limit below one reads one entry
    every = await admin.audit_page(AuditQuery("g1", limit=10 * MAX_AUDIT_ENTRIES), OWNER)
    assert len(every) == 5
    with pytest.raises(PolicyRefusal):
        await admin.audit_page(AuditQuery("g1"), MEMBER, origin="dashboard")
    [refused] = await admin.audit_page(AuditQuery("g1", kind="denied"), OWNER)
    assert (refused.action, refused.actor_id, refused.origin) == (
        "read_audit_log",
        "member",
        "dashboard",
    )
