"""Slack request signatures (v0): checked before Bolt sees a request, never raising on bad input."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

# Slack's window: a request older or newer than this is refused, so a captured one cannot be replayed
# later; a replay inside the window is caught by the job store's unique trigger id.
MAX_SKEW_SECONDS = 60 * 5
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureChecker:
    def __init__(self, signing_secret: str, now: Callable[[], float]) -> None:
        self._secret = signing_secret.encode()
        self._now = now

    def sign(self, body: bytes, timestamp: str) -> str:
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def is_valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """True for a correctly signed, fresh request. Any malformed header is simply invalid
        (slack_sdk's verifier raises ValueError on a timestamp like ``abc`` or ``1e3``)."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.match(timestamp) or not signature.startswith("v0="):
            return False
        if abs(self._now() - int(timestamp)) > MAX_SKEW_SECONDS:
            return False
        return hmac.compare_digest(self.sign(body, timestamp), signature)
