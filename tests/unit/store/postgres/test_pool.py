"""What the PostgreSQL URL tells the store: the schema to use, and a form fit for messages."""

from __future__ import annotations

from bot.store.postgres.pool import redact_url, schema_of


def test_the_password_never_reaches_a_message() -> None:
    url = "postgresql://bot:s3cret@db.example:5432/imagine?search_path=bot"
    assert redact_url(url) == "postgresql://bot:***@db.example:5432/imagine?search_path=bot"
    assert redact_url("postgresql://bot@db/imagine") == "postgresql://bot@db/imagine"


def test_the_schema_is_the_first_of_the_search_path() -> None:
    assert schema_of("postgresql://db/imagine?search_path=bot,public") == "bot"
    assert schema_of('postgresql://db/imagine?search_path="quoted"') == "quoted"
    assert schema_of("postgresql://db/imagine") is None
    assert schema_of("postgresql://db/imagine?search_path=") is None
