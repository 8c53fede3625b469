"""Logging set-up: text or JSON lines, with every known secret redacted before it is written.

Secrets are redacted three ways: by value (every secret setting, added at start), by value while a
job is worked (the token-like values of its reply target, see ``reply_secrets``), and by shape
(authorization headers, Slack and Discord tokens, webhook and interaction URLs, signed URL queries).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.domain.models import Job, ReplyTarget

# Shapes of secrets we may not know by value: tokens in URLs and headers, Slack and Discord tokens.
# The part of a match in the group ``keep`` stays; the rest becomes REDACTED.
_PATTERNS = [
    re.compile(
        r"(?i)(?P<keep>(?:authorization|x-key|x-api-key|api-key|x-slack-signature)['\"]?\s*[:=]\s*"
        r"['\"]?(?:(?:bearer|bot|key|basic)\s+)?)[^'\",\s]+"
    ),
    re.compile(r"(?i)(?P<keep>\b(?:bearer|bot)\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"xox[abposre]-[A-Za-z0-9-]{8,}"),
    re.compile(r"xapp-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?P<keep>/webhooks/\d+/)[A-Za-z0-9_.-]{20,}"),
    re.compile(r"(?P<keep>/interactions/\d+/)[A-Za-z0-9_.-]{20,}"),
    # A Discord interaction token is base64 of "interaction:<id>:..."
    re.compile(r"aW50ZXJhY3Rpb246[A-Za-z0-9_.-]{8,}"),
    re.compile(r"https://hooks\.slack\.com/[A-Za-z0-9/_.-]+"),
    re.compile(
        r"(?i)(?P<keep>[?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
        r"sig|se|token|Key-Pair-Id|Policy|access_token|api_key|key)=)[^&\s'\"]+"
    ),
]
# Keys of ``ReplyTarget.data`` whose values are secrets (interaction tokens, response URLs).
_SECRET_KEY = re.compile(r"(?i)token|secret|url|key|signature|password")
# The HTTP and platform libraries log full URLs, headers or gateway payloads (tokens included) below
# these levels; they are held at least this high whatever IMAGINE_LOG_LEVEL says.
NOISY_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "hpack": logging.WARNING,
    "urllib3": logging.WARNING,
    "botocore": logging.WARNING,
    "aiobotocore": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "aiohttp.client": logging.WARNING,
    "asyncpg": logging.INFO,
    # aiosqlite logs each call it runs at DEBUG, with its parameters (job rows hold reply tokens).
    "aiosqlite": logging.INFO,
    "discord.http": logging.WARNING,
    "discord.gateway": logging.INFO,
    "discord.webhook": logging.WARNING,
    "discord.state": logging.INFO,
    "slack_sdk": logging.INFO,
    "slack_bolt": logging.INFO,
    "websockets": logging.INFO,
    "PIL": logging.INFO,
}
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    """Replaces known secret values and secret-shaped strings in every record's final text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        # Secrets known while a job is worked, counted (two jobs may share a value).
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def hold(self, secrets: Iterable[str]) -> list[str]:
        """Redact ``secrets`` until ``release`` is called with what this returns."""
        held = [s for s in secrets if s and len(s) >= 6]
        with self._lock:
            self._held.update(held)
        return held

    def release(self, held: Iterable[str]) -> None:
        with self._lock:
            self._held.subtract(held)
            for secret in [s for s, n in self._held.items() if n <= 0]:
                del self._held[secret]

    def redact(self, text: str) -> str:
        with self._lock:
            known = sorted(self._secrets | set(self._held), key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(_replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message = message + "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            message = message + "\n" + record.stack_info
            record.stack_info = None
        record.msg = self.redact(message)
        record.args = None
        return True


def _replacement(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return (keep or "") + REDACTED


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("job_id", "community", "provider", "step", "status", "duration_ms"):
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        return json.dumps(payload, ensure_ascii=False)


_filter = RedactingFilter()


def redaction_filter() -> RedactingFilter:
    """The process-wide filter, so that code learning a secret late (an interaction token) can add it."""
    return _filter


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    _filter.add_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_filter)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_noisy_loggers(level)


def quiet_noisy_loggers(level: str | int) -> None:
    """Hold the HTTP and platform libraries' loggers at their floor (see NOISY_LOGGERS)."""
    wanted = logging.getLevelName(level) if isinstance(level, str) else level
    for name, floor in NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, int(wanted)))


def reply_secrets(data: Mapping[str, str]) -> list[str]:
    """The values of a reply target's data that must never be logged (tokens, response URLs)."""
    return [value for key, value in data.items() if _SECRET_KEY.search(key) and value]


def hold_job_secrets(reply: ReplyTarget) -> list[str]:
    """Redact a job's reply secrets while it is worked; pass the result to ``release_job_secrets``."""
    return _filter.hold(reply_secrets(reply.data))


def release_job_secrets(held: list[str]) -> None:
    _filter.release(held)


def log_job_step(
    logger: logging.Logger, job: Job, step: str, seconds: float, level: int = logging.INFO
) -> None:
    """The one line per job step: job id, community, provider, status and duration."""
    logger.log(
        level,
        "job %s: %s in %.0f ms (status %s, community %s, provider %s)",
        job.id,
        step,
        seconds * 1000,
        job.status.value,
        job.community_id,
        job.provider or "-",
        extra=step_fields(job, step, seconds),
    )


def step_fields(job: Job, step: str, seconds: float) -> dict[str, object]:
    """The ``extra`` of a job step's log line (fields of the JSON format)."""
    return {
        "job_id": job.id,
        "community": job.community_id,
        "provider": job.provider,
        "step": step,
        "status": job.status.value,
        "duration_ms": round(seconds * 1000, 1),
    }
