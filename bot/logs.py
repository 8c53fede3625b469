"""Logging set-up: text or JSON lines, with every known secret redacted before it is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

# Shapes of secrets we may not know by value: tokens in URLs and headers, Slack and Discord tokens.
_PATTERNS = [
    re.compile(r"(?i)(authorization|x-key|x-slack-signature)(['\"]?\s*[:=]\s*['\"]?)([^'\",\s]+)"),
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"xapp-[A-Za-z0-9-]{8,}"),
    re.compile(r"(/webhooks/\d+/)([A-Za-z0-9_.-]{20,})"),
    re.compile(r"(/interactions/\d+/)([A-Za-z0-9_.-]{20,})"),
    re.compile(r"(https://hooks\.slack\.com/[A-Za-z0-9/_-]+)"),
    re.compile(r"([?&](?:X-Amz-Signature|X-Amz-Credential|Signature|sig|se|token)=)[^&\s'\"]+"),
]
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    """Replaces known secret values and secret-shaped strings in every record's final text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
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
    groups = match.groups()
    if len(groups) >= 2:
        return "".join(groups[:-1]) + REDACTED
    return REDACTED


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("job_id", "community", "provider", "step", "duration_ms"):
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
    # The HTTP libraries log full URLs (tokens and signed URLs included) at INFO/DEBUG.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "botocore", "urllib3", "discord.http"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
