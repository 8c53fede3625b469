"""Slack: /imagine, buttons and App Home on slack-bolt, over HTTP (the bot's own server) or Socket Mode."""

from __future__ import annotations

from adapters.host import Host

from .adapter import SlackAdapter
from .doctor import check_slack as doctor_check


def create_adapter(app: Host, *, gateway: bool = True) -> SlackAdapter:
    return SlackAdapter(app, gateway=gateway)


__all__ = ["SlackAdapter", "create_adapter", "doctor_check"]
