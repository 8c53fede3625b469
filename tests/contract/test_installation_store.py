"""The store's installations and OAuth states, one contract on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bot.store import Installation, Store

NOW = 1_800_000_000.0


def _installation(team: str = "T1", secret: str = "sealed-1", enterprise: str = "") -> Installation:
    return Installation("slack", enterprise, team, secret, NOW)


async def test_a_saved_installation_is_found_by_its_workspace(store: Store) -> None:
    await store.save_installation(_installation())
    assert await store.find_installation("slack", "", "T1") == _installation()
    assert await store.find_installation("slack", "", "T2") is None
    assert await store.find_installation("discord", "", "T1") is None


async def test_a_reinstall_replaces_the_workspaces_installation(store: Store) -> None:
    await store.save_installation(_installation(secret="old"))
    await store.save_installation(Installation("slack", "", "T1", "new", NOW + 60))
    found = await store.find_installation("slack", "", "T1")
    assert found is not None and found.secret == "new" and found.installed_at == NOW + 60


async def test_an_org_install_and_a_workspace_install_are_kept_apart(store: Store) -> None:
    await store.save_installation(_installation(team="", enterprise="E1", secret="org"))
    await store.save_installation(_installation(team="T1", enterprise="E1", secret="ws"))
    org = await store.find_installation("slack", "E1", "")
    workspace = await store.find_installation("slack", "E1", "T1")
    assert org is not None and org.secret == "org"
    assert workspace is not None and workspace.secret == "ws"


async def test_deleting_an_installation_forgets_only_that_workspace(store: Store) -> None:
    await store.save_installation(_installation("T1"))
    await store.save_installation(_installation("T2"))
    assert await store.delete_installation("slack", "", "T1") is True
    assert await store.delete_installation("slack", "", "T1") is False
    assert await store.find_installation("slack", "", "T1") is None
    assert await store.find_installation("slack", "", "T2") is not None


async def test_an_oauth_state_is_consumed_once(store: Store) -> None:
    await store.issue_oauth_state("s1", NOW + 600, NOW)
    assert await store.consume_oauth_state("s1", NOW + 1) is True
    assert await store.consume_oauth_state("s1", NOW + 2) is False
    assert await store.consume_oauth_state("never-issued", NOW) is False


async def test_an_expired_oauth_state_is_refused(store: Store) -> None:
    await store.issue_oauth_state("s1", NOW + 600, NOW)
    assert await store.consume_oauth_state("s1", NOW + 601) is False


async def test_concurrent_redirects_with_one_state_succeed_once(store: Store) -> None:
    await store.issue_oauth_state("s1", NOW + 600, NOW)
    results = await asyncio.gather(*(store.consume_oauth_state("s1", NOW) for _ in range(10)))
    assert sum(results) == 1


async def test_issuing_a_state_forgets_expired_ones(store: Store) -> None:
    await store.issue_oauth_state("old", NOW + 10, NOW)
    await store.issue_oauth_state("new", NOW + 700, NOW + 100)
    # "old" expired before "new" was issued: gone, even for a clock that went back.
    assert await store.consume_oauth_state("old", NOW) is False
    assert await store.consume_oauth_state("new", NOW + 100) is True
