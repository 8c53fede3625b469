"""Blob keys: the one rule every backend applies before a key reaches a path or a bucket."""

from __future__ import annotations

import re

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid blob key {key!r}")
    return key
