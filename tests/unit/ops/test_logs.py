"""The redaction filter and the log formats, on records as the bot writes them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.domain.models import ReplyTarget
from bot.ops.logs import (
    NOISY_LOGGERS,
    JsonFormatter,
    RedactingFilter,
    hold_job_secrets,
    redaction_filter,
    release_job_secrets,
    reply_secrets,
    setup_logging,
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        ("headers={'authorization': 'Bot MTIzNDU2Nzg5MDEy.GhIjKl.mnopqrstuvwx'}", "MTIzNDU2"),
        ("{'x-key': 'bfl-0123456789abcdef'}", "bfl-0123456789abcdef"),
        ("Authorization: Key fal-0123:abcdef0123456789", "abcdef0123456789"),
        ("token xoxb-1234567890-0987654321-AbCdEfGhIjKl used", "xoxb-1234567890"),
        ("app token xapp-1-A0123-456-abcdef0123", "xapp-1-A0123"),
        (
            "POST https://discord.com/api/v10/webhooks/1234/aW50ZXJhY3Rpb246MTIzNDU2Nzg5OjEyMw",
            "aW50",
        ),
        ("PATCH /interactions/998877/abcdefghijklmnopqrstuvwxyz012/callback", "abcdefghijklmnop"),
        ("response_url=https://hooks.slack.com/commands/T01/1234/AbCdEf0123", "T01/1234/AbCdEf"),
        (
            "GET https://delivery-eu1.bfl.ai/r/x.png?se=2026-11-25T10%3A00Z&sp=r&sig=Zm9vYmFy%3D",
            "Zm9vYmFy",
        ),
        (
            "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef",
            "deadbeef",
        ),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    redacted = RedactingFilter().redact(text)
    assert secret not in redacted
    assert "[redacted]" in redacted


def test_known_values_are_redacted_anywhere_and_ordinary_text_is_kept() -> None:
    f = RedactingFilter(["s3cr3t-value-1"])
    assert f.redact("x=s3cr3t-value-1;y") == "x=[redacted];y"
    plain = "job 1a2b: submit in 12 ms (status submitted, community c1, provider bfl)"
    assert f.redact(plain) == plain


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["top-secret-key"]))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("provider said no to top-secret-key")
        except RuntimeError:
            logger.exception("calling with %s failed", "top-secret-key")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = stream.getvalue()
    assert "top-secret-key" not in text
    assert "RuntimeError: provider said no to [redacted]" in text
    assert "calling with [redacted] failed" in text


def test_a_jobs_reply_secrets_are_redacted_only_while_held() -> None:
    reply = ReplyTarget(
        "discord",
        "123456789012345678",
        data={"interaction_token": "tok-abcdef-123456", "application_id": "4242424242"},
    )
    assert reply_secrets(reply.data) == ["tok-abcdef-123456"]
    held = hold_job_secrets(reply)
    try:
        text = redaction_filter().redact("token tok-abcdef-123456 for channel 123456789012345678")
        assert text == "token [redacted] for channel 123456789012345678"
    finally:
        release_job_secrets(held)
    assert "tok-abcdef-123456" in redaction_filter().redact("tok-abcdef-123456")


def test_json_lines_carry_the_job_fields() -> None:
    record = logging.LogRecord(
        "bot.jobs.pool", logging.INFO, __file__, 1, "job %s: submit", ("j1",), None
    )
    record.job_id, record.community, record.provider = "j1", "c1", "bfl"  # type: ignore[attr-defined]
    record.step, record.duration_ms = "submit", 12.5  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "job j1: submit"
    assert (line["job_id"], line["community"], line["provider"]) == ("j1", "c1", "bfl")
    assert (line["step"], line["duration_ms"], line["level"]) == ("submit", 12.5, "INFO")


def test_debug_logging_keeps_the_http_libraries_quiet() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("DEBUG", "json")
        assert root.level == logging.DEBUG
        for name in ("httpx", "httpcore", "discord.http", "discord.gateway"):
            assert (
                logging.getLogger(name).getEffectiveLevel() >= NOISY_LOGGERS[name] > logging.DEBUG
            )
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
