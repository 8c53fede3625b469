"""``/settings`` as typed text (console, Slack): words -> a typed change or a read-only view.

``parse_settings_command("block dragon")`` -> ``BlockTerm("dragon")``; ``""`` -> ``ShowSettings()``.
The service still decides who may do what; this only reads the words.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.community import (
    AllowAllChannels,
    AllowChannel,
    BanUser,
    BlockTerm,
    ClearUserLimits,
    DisallowChannel,
    SetAdminsExempt,
    SetBudget,
    SetCache,
    SetChannelSafety,
    SetCommunityDaily,
    SetDefaultModel,
    SetInputImages,
    SetSafetyLevel,
    SettingsChange,
    SetUserLimits,
    UnbanUser,
    UnblockTerm,
)
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED, parse_rate
from bot.domain.models import Limits

SETTINGS_HELP = """/settings                          show this community's settings
/settings safety <strict|standard|relaxed|adult|0-6>
/settings channel-safety <channel> <level|clear>
/settings allow <channel>  |  disallow <channel>  |  allow-all
/settings block <term>  |  unblock <term>  |  blocked   (list the word list)
/settings ban <user>  |  unban <user>
/settings limits [role=<role>] [rate=5/minute] [burst=N] [daily=N|off] [in-flight=N|off]
/settings limits reset [<role>]
/settings server-daily <images|off|default>
/settings budget <usd|off|default>
/settings model <name|default>
/settings input-images on|off  |  cache on|off  |  admins-exempt on|off
/settings audit [count]            the newest audit log entries"""


@dataclass(frozen=True)
class ShowSettings:
    pass


@dataclass(frozen=True)
class ListBlockedTerms:
    pass


@dataclass(frozen=True)
class ShowAudit:
    limit: int = 20


@dataclass(frozen=True)
class ShowSettingsHelp:
    pass


SettingsCommand = SettingsChange | ShowSettings | ListBlockedTerms | ShowAudit | ShowSettingsHelp


def _on_off(word: str, what: str) -> bool:
    lowered = word.lower()
    if lowered in ("on", "yes", "true", "enable", "enabled"):
        return True
    if lowered in ("off", "no", "false", "disable", "disabled"):
        return False
    raise InvalidRequest(f"{what} is on or off; got {word!r}.")


def _count(text: str, what: str) -> int:
    lowered = text.lower()
    if lowered in ("off", "none", "unlimited"):
        return UNLIMITED
    if not lowered.isdigit():
        raise InvalidRequest(f"{what} is a whole number or off; got {text!r}.")
    return int(lowered)


def _one(rest: list[str], usage: str) -> str:
    if len(rest) != 1:
        raise InvalidRequest(f"Usage: /settings {usage}")
    return rest[0]


def parse_settings_command(text: str) -> SettingsCommand:
    """Read ``/settings`` arguments; raises InvalidRequest with the usage line when they are wrong."""
    words = text.split()
    if not words:
        return ShowSettings()
    verb, rest = words[0].lower(), words[1:]
    joined = " ".join(rest)
    if verb in ("help", "-h", "--help"):
        return ShowSettingsHelp()
    if verb == "safety":
        return SetSafetyLevel(_one(rest, "safety <strict|standard|relaxed|adult|0-6>"))
    if verb == "channel-safety":
        if len(rest) != 2:
            raise InvalidRequest("Usage: /settings channel-safety <channel> <level|clear>")
        level = None if rest[1].lower() in ("clear", "default", "none") else rest[1]
        return SetChannelSafety(rest[0], level)
    if verb == "allow":
        return AllowChannel(_one(rest, "allow <channel>"))
    if verb == "disallow":
        return DisallowChannel(_one(rest, "disallow <channel>"))
    if verb == "allow-all":
        return AllowAllChannels()
    if verb in ("block", "unblock"):
        if not joined.strip():
            raise InvalidRequest(f"Usage: /settings {verb} <term>")
        return BlockTerm(joined) if verb == "block" else UnblockTerm(joined)
    if verb == "blocked":
        return ListBlockedTerms()
    if verb == "ban":
        return BanUser(_one(rest, "ban <user>"))
    if verb == "unban":
        return UnbanUser(_one(rest, "unban <user>"))
    if verb == "limits":
        return _limits(rest)
    if verb == "server-daily":
        value = _one(rest, "server-daily <images|off|default>")
        return SetCommunityDaily(None if value.lower() == "default" else _count(value, "It"))
    if verb == "budget":
        value = _one(rest, "budget <usd|off|default>").lstrip("$")
        if value.lower() == "default":
            return SetBudget(None)
        if value.lower() in ("off", "none", "unlimited"):
            return SetBudget(float(UNLIMITED))
        try:
            return SetBudget(float(value))
        except ValueError:
            raise InvalidRequest(f"The budget is an amount in US dollars; got {value!r}.") from None
    if verb == "model":
        value = _one(rest, "model <name|default>")
        return SetDefaultModel(None if value.lower() == "default" else value)
    if verb == "input-images":
        return SetInputImages(_on_off(_one(rest, "input-images on|off"), "input-images"))
    if verb == "cache":
        return SetCache(_on_off(_one(rest, "cache on|off"), "cache"))
    if verb == "admins-exempt":
        return SetAdminsExempt(_on_off(_one(rest, "admins-exempt on|off"), "admins-exempt"))
    if verb == "audit":
        if rest and not rest[0].isdigit():
            raise InvalidRequest("Usage: /settings audit [count]")
        return ShowAudit(int(rest[0]) if rest else 20)
    raise InvalidRequest(f"Unknown setting {verb!r}. Settings:\n{SETTINGS_HELP}")


def _limits(rest: list[str]) -> SettingsChange:
    if rest and rest[0].lower() == "reset":
        if len(rest) > 2:
            raise InvalidRequest("Usage: /settings limits reset [<role>]")
        return ClearUserLimits(rest[1] if len(rest) == 2 else None)
    if not rest:
        raise InvalidRequest(
            "Usage: /settings limits [role=<role>] [rate=5/minute] [burst=N] [daily=N|off] "
            "[in-flight=N|off]"
        )
    rate: int | None = None
    period: float | None = None
    counts: dict[str, int] = {}
    role: str | None = None
    for word in rest:
        key, sep, value = word.partition("=")
        key = key.lower().replace("_", "-")
        if not sep or not value:
            raise InvalidRequest(f"Write limits as name=value, like rate=5/minute; got {word!r}.")
        if key == "role":
            role = value
        elif key == "rate":
            try:
                parsed = parse_rate(value)
            except ValueError as exc:
                raise InvalidRequest(f"rate: {exc}.") from None
            rate, period = parsed if parsed else (UNLIMITED, None)
        elif key in ("burst", "daily", "in-flight"):
            counts[key] = _count(value, key)
        else:
            raise InvalidRequest(
                f"Unknown limit {key!r}: use rate, burst, daily, in-flight or role."
            )
    limits = Limits(
        rate=rate,
        period=period,
        burst=counts.get("burst"),
        daily=counts.get("daily"),
        max_in_flight=counts.get("in-flight"),
    )
    return SetUserLimits(limits, role_id=role)
