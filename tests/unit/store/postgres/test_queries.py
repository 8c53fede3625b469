"""Named PostgreSQL queries: ``:name`` parameters become ``$n`` once, and command tags count rows."""

from __future__ import annotations

import pytest

from bot.domain.errors import StoreError
from bot.store.postgres.queries import Q, compile_query, rowcount
from bot.store.sql import load_queries


def test_each_parameter_gets_one_number_in_order_of_first_use() -> None:
    query = compile_query("q", "SELECT :b, :a FROM t WHERE x = :b AND y = :a_long")
    assert query.sql == "SELECT $1, $2 FROM t WHERE x = $1 AND y = $3"
    assert query.params == ("b", "a", "a_long")
    assert query.args({"a": 1, "b": 2, "a_long": 3, "unused": 4}) == [2, 1, 3]


def test_casts_and_comments_are_not_parameters() -> None:
    text = "-- note: :not_a_param here\nSELECT * FROM t WHERE id = ANY(:ids::text[])"
    query = compile_query("q", text)
    assert query.sql == "SELECT * FROM t WHERE id = ANY($1::text[])"
    assert query.params == ("ids",)


def test_a_missing_parameter_names_the_query_and_the_parameter() -> None:
    with pytest.raises(StoreError, match="query q needs parameter user_id"):
        compile_query("q", "SELECT :user_id").args({})


def test_every_named_query_of_the_file_is_compiled() -> None:
    assert set(Q) == set(load_queries("postgres"))
    assert all(":" not in p for query in Q.values() for p in query.params)
    assert "$1" in Q["get_job"].sql and Q["get_job"].params == ("id",)


@pytest.mark.parametrize(
    ("status", "count"),
    [("UPDATE 1", 1), ("INSERT 0 1", 1), ("SELECT 0", 0), ("DELETE 12", 12), ("BEGIN", 0)],
)
def test_command_tags_give_the_rows_changed(status: str, count: int) -> None:
    assert rowcount(status) == count
