"""A user's own defaults for /imagine (``/prefer``): model, aspect, format, count, private,
enhance and a suffix appended to every prompt. They fill what a request leaves open, before the
community's rules, which win where they are stricter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from bot.domain.catalog import Catalog, parse_aspect
from bot.domain.errors import InvalidRequest
from bot.domain.models import CommunitySettings, ImagineRequest

# The formats a user may ask for (the providers' ``OUTPUT_FORMATS``).
FORMATS = ("png", "jpeg", "webp")
MAX_COUNT = 4
# A suffix leaves room for a prompt within the 2,000 characters every prompt has.
MAX_SUFFIX_CHARS = 500
NAMES = ("model", "aspect", "format", "count", "private", "enhance", "suffix")


@dataclass(frozen=True)
class Preferences:
    """``None`` everywhere means "not set": the request or the community decides."""

    model: str | None = None
    aspect: str | None = None
    format: str | None = None
    count: int | None = None
    private: bool | None = None
    enhance: bool | None = None
    suffix: str | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Preferences:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(raw or {}).items() if k in known})

    def evolve(self, **changes: Any) -> Preferences:
        return replace(self, **changes)


def check_preference(name: str, value: Any, catalog: Catalog) -> Any:
    """The value to store for one preference (``None`` clears it); raises InvalidRequest naming
    what is allowed."""
    if name not in NAMES:
        raise InvalidRequest(f"Unknown preference {name!r}. Preferences: {', '.join(NAMES)}.")
    if value is None or (isinstance(value, str) and value.strip().lower() == "default"):
        return None
    if name == "model":
        return catalog.resolve(str(value)).name
    if name == "aspect":
        a, b = parse_aspect(str(value))
        return f"{a}:{b}"
    if name == "format":
        fmt = str(value).strip().lower().replace("jpg", "jpeg")
        if fmt not in FORMATS:
            raise InvalidRequest(f"Unknown format {value!r}. Choose one of: {', '.join(FORMATS)}.")
        return fmt
    if name == "count":
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
            raise InvalidRequest(f"count is 1 to {MAX_COUNT}; got {value!r}.")
        return int(text)
    if name in ("private", "enhance"):
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in ("on", "yes", "true", "1"):
            return True
        if word in ("off", "no", "false", "0"):
            return False
        raise InvalidRequest(f"{name} is on or off; got {value!r}.")
    suffix = " ".join(str(value).split())
    if len(suffix) > MAX_SUFFIX_CHARS:
        raise InvalidRequest(
            f"A suffix is at most {MAX_SUFFIX_CHARS} characters; yours has {len(suffix):,}."
        )
    return suffix or None


def describe_preferences(prefs: Preferences) -> list[str]:
    """One line per preference that is set, as ``/prefer show`` lists them."""
    lines = []
    for name in NAMES:
        value = getattr(prefs, name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        lines.append(f"{name}: {value}")
    return lines


def apply_preferences(
    request: ImagineRequest, prefs: Preferences | None, settings: CommunitySettings
) -> ImagineRequest:
    """The request with the user's defaults where it leaves a choice open. What the request says
    itself wins; the community's rules win over a default: private only where allowed."""
    if prefs is None or prefs.empty:
        return request
    changes: dict[str, Any] = {}
    if request.variant is None and prefs.model is not None:
        changes["variant"] = prefs.model
    sized = request.width is not None or request.height is not None
    if request.aspect_ratio is None and not sized and prefs.aspect is not None:
        changes["aspect_ratio"] = prefs.aspect
    if request.count == 1 and prefs.count is not None:
        changes["count"] = prefs.count
    if request.output_format is None and prefs.format is not None:
        changes["output_format"] = prefs.format
    if request.enhance is None and prefs.enhance is not None:
        changes["enhance"] = prefs.enhance
    if not request.private and prefs.private and settings.allow_private:
        changes["private"] = True
    if prefs.suffix:
        changes["prompt"] = f"{request.prompt} {prefs.suffix}"
    return request.with_changes(**changes) if changes else request
