"""The /prefer grammar of the text platforms (console, Slack): ``prefer`` or ``prefer show``,
``prefer reset``, ``prefer <name> <value>`` (``default`` clears one; a suffix is the rest of the
line). Discord has typed options instead and ends in the same service calls."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import InvalidRequest
from bot.domain.preferences import NAMES

PREFER_HELP = (
    "prefer [show] | prefer reset | prefer <name> <value>   (value 'default' clears one)\n"
    "  model <name>, aspect <16:9>, format png|jpeg|webp, count 1-4, private on|off,\n"
    "  enhance on|off, suffix <text added to every prompt>"
)


@dataclass(frozen=True)
class ShowPreferences:
    pass


@dataclass(frozen=True)
class ResetPreferences:
    pass


@dataclass(frozen=True)
class SetPreference:
    name: str
    value: str


PreferCommand = ShowPreferences | ResetPreferences | SetPreference


def parse_prefer(text: str) -> PreferCommand:
    words = text.split()
    if not words or words == ["show"]:
        return ShowPreferences()
    if words == ["reset"]:
        return ResetPreferences()
    name = words[0].lower()
    if name not in NAMES:
        raise InvalidRequest(f"Unknown preference {words[0]!r}. Use:\n{PREFER_HELP}")
    if len(words) < 2:
        raise InvalidRequest(f"prefer {name} needs a value ('default' clears it).")
    return SetPreference(name, " ".join(words[1:]))
