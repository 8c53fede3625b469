"""The Slack payloads the bot reads, as TypedDicts: only the fields it uses, all optional.

Field names follow Slack's reference pages, named beside each type. Slack sends more than this and
may leave any field out, so every reader goes through ``text`` and ``team_of`` rather than indexing.
"""

from __future__ import annotations

from typing import Any, TypedDict


class SlashCommand(TypedDict, total=False):
    """A slash command's form fields (https://api.slack.com/interactivity/slash-commands)."""

    command: str
    text: str
    team_id: str
    enterprise_id: str
    user_id: str
    channel_id: str
    thread_ts: str
    response_url: str
    trigger_id: str


class UserRef(TypedDict, total=False):
    id: str
    team_id: str


class TeamRef(TypedDict, total=False):
    id: str


class ChannelRef(TypedDict, total=False):
    id: str


class Container(TypedDict, total=False):
    channel_id: str
    thread_ts: str
    message_ts: str


class MessageRef(TypedDict, total=False):
    ts: str
    thread_ts: str
    text: str


class Action(TypedDict, total=False):
    """One element of ``actions`` in a block_actions payload."""

    action_id: str
    value: str


class BlockActions(TypedDict, total=False):
    """A button press (https://api.slack.com/reference/interaction-payloads/block-actions)."""

    type: str
    user: UserRef
    team: TeamRef
    channel: ChannelRef
    container: Container
    message: MessageRef
    response_url: str
    trigger_id: str
    actions: list[Action]


class InputValue(TypedDict, total=False):
    value: str


class ViewState(TypedDict, total=False):
    # block_id -> action_id -> the input's value
    values: dict[str, dict[str, InputValue]]


class View(TypedDict, total=False):
    """A modal as it comes back (https://api.slack.com/reference/interaction-payloads/views)."""

    id: str
    callback_id: str
    private_metadata: str
    state: ViewState


class ViewSubmission(TypedDict, total=False):
    type: str
    user: UserRef
    team: TeamRef
    trigger_id: str
    view: View


class AppHomeOpened(TypedDict, total=False):
    """The ``app_home_opened`` event (https://api.slack.com/events/app_home_opened)."""

    type: str
    user: str
    tab: str


class DirectMessage(TypedDict, total=False):
    """A ``message`` event in the bot's DM (https://api.slack.com/events/message.im)."""

    type: str
    channel: str
    channel_type: str
    user: str
    text: str
    ts: str
    thread_ts: str
    subtype: str
    bot_id: str
    client_msg_id: str


class EventCallback(TypedDict, total=False):
    """The Events API envelope (https://api.slack.com/apis/events-api#callback-field)."""

    type: str
    team_id: str
    enterprise_id: str
    event_id: str
    event: dict[str, Any]


def text(value: object) -> str:
    """A string field, or "" when Slack left it out or sent something else."""
    return value if isinstance(value, str) else ""


def team_of(body: BlockActions | ViewSubmission) -> str:
    """The workspace of an interaction: ``team.id``, else the user's ``team_id``."""
    return text((body.get("team") or {}).get("id")) or text((body.get("user") or {}).get("team_id"))
