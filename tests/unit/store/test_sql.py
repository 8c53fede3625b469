"""Each backend's SQL files: its named queries and its numbered migrations, shipped beside it."""

from __future__ import annotations

import pytest

from bot.store.sql import load_migrations, load_queries


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_both_backends_name_the_queries_the_shared_logic_runs(backend: str) -> None:
    shared = {
        "get_job", "get_job_by_dedupe", "insert_job", "save_job_step", "merge_job_delivery",
        "release_job", "cancel_job", "lease_owners", "count_pending", "queue_position",
        "job_counts", "get_settings", "save_settings", "get_rate_tat", "set_rate_tat",
        "user_usage", "community_usage", "find_leader_job", "add_cache_key", "find_cached_job",
        "add_audit", "list_audit", "release_leases_of",
        "get_preferences", "save_preferences", "delete_preferences", "list_user_jobs",
    }  # fmt: skip
    queries = load_queries(backend)
    assert shared <= set(queries)
    assert all(text and not text.startswith("-- name:") for text in queries.values())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_are_numbered_from_one_without_gaps(backend: str) -> None:
    versions = [version for version, _ in load_migrations(backend)]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) >= 4


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="no store backend named 'mysql'"):
        load_queries("mysql")
