"""Domain values shared by the core and the adapters: requests, jobs, reply targets, settings."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    FETCHED = "fetched"
    DELIVERED = "delivered"
    FAILED = "failed"
    MODERATED = "moderated"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        JobStatus.DELIVERED,
        JobStatus.FAILED,
        JobStatus.MODERATED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    }
)

# ``Job.provider`` of a job served from another job's images (a stored image, or an identical
# request in flight: then ``provider_task`` is ``{"follows": <job id>}``). No provider call, no cost.
CACHE_PROVIDER = "cache"
# The image formats a user may ask for (``--format``), and the bot-wide default: JPEG, BFL's own
# default (https://docs.bfl.ai/api-reference/models/generate-or-edit-an-image-with-flux2-%5Bpro%5D);
# a 4-megapixel PNG of 6-10 MB overruns Discord's 10 MB upload limit, a JPEG is a fraction of it.
OUTPUT_FORMATS = ("jpeg", "png", "webp")
DEFAULT_OUTPUT_FORMAT = "jpeg"


@dataclass(frozen=True)
class ReplyTarget:
    """Where a job's outcome goes. ``data`` is the adapter's own (tokens included): never logged."""

    platform: str
    channel_id: str
    thread_id: str | None = None
    data: Mapping[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "channel_id": self.channel_id,
            "thread_id": self.thread_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReplyTarget:
        return cls(
            platform=str(raw["platform"]),
            channel_id=str(raw["channel_id"]),
            thread_id=raw.get("thread_id"),
            data={str(k): str(v) for k, v in dict(raw.get("data") or {}).items()},
        )


@dataclass(frozen=True)
class ImagineRequest:
    """One /imagine as a user asked for it, whatever the platform."""

    platform: str
    community_id: str
    channel_id: str
    user_id: str
    prompt: str
    reply: ReplyTarget
    variant: str | None = None
    aspect_ratio: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    count: int = 1
    input_images: tuple[str, ...] = ()
    # The platform's id of the event (Discord interaction id, Slack trigger id): one job per event.
    dedupe_key: str | None = None
    user_roles: tuple[str, ...] = ()
    user_is_admin: bool = False
    channel_age_restricted: bool = False
    use_cache: bool = True
    action: str = "imagine"
    parent_job_id: str | None = None
    # The safety tolerance (BFL 0-6) fixed when the request was accepted; None on older rows.
    safety_tolerance: int | None = None
    # Shown to the requester only (Discord ephemeral, Slack ephemeral + DM); never in a channel.
    private: bool = False
    # The image format (``OUTPUT_FORMATS``) and prompt upsampling: as asked (or by the user's
    # preferences), then fixed at acceptance from the community's and the bot's defaults; None
    # means not asked (on older rows: PNG, no upsampling).
    output_format: str | None = None
    enhance: bool | None = None
    # Inference steps and guidance where the variant takes them (FLUX.2 [flex]); None: defaults.
    steps: int | None = None
    guidance: float | None = None

    def to_json(self) -> dict[str, Any]:
        # Field by field, not ``asdict``: every other field is a plain value, and asdict's deep
        # copies were a noticeable share of each stored step.
        raw = {name: getattr(self, name) for name in self.__dataclass_fields__}
        raw["reply"] = self.reply.to_json()
        raw["input_images"] = list(self.input_images)
        raw["user_roles"] = list(self.user_roles)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ImagineRequest:
        values = dict(raw)
        values["reply"] = ReplyTarget.from_json(values["reply"])
        values["input_images"] = tuple(values.get("input_images") or ())
        values["user_roles"] = tuple(values.get("user_roles") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def with_changes(self, **changes: Any) -> ImagineRequest:
        return replace(self, **changes)

    @cached_property
    def json_text(self) -> str:
        """``to_json`` as stored (the request never changes once made, so it is written once)."""
        return dumps(self.to_json())


@dataclass(frozen=True)
class Job:
    """A stored request and how far it has come. The store holds the truth; this is one reading."""

    id: str
    request: ImagineRequest
    status: JobStatus
    width: int
    height: int
    seed: int
    variant: str
    created_at: float
    updated_at: float
    provider: str | None = None
    model_id: str | None = None
    # What the provider needs to find the task again (task id, polling URL, ...). Stored before waiting.
    provider_task: Mapping[str, Any] | None = None
    submit_started_at: float | None = None
    attempts: int = 0
    not_before: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    images: tuple[str, ...] = ()
    cost_usd: float = 0.0
    error_code: str | None = None
    error_message: str | None = None
    outcome_sent: bool = False
    delivery: Mapping[str, Any] = field(default_factory=dict)
    finished_at: float | None = None

    @property
    def community_id(self) -> str:
        return self.request.community_id

    @property
    def user_id(self) -> str:
        return self.request.user_id

    @property
    def provider_task_id(self) -> str | None:
        if not self.provider_task:
            return None
        task_id = self.provider_task.get("id")
        return str(task_id) if task_id is not None else None

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Limits:
    """Per-user limits; ``None`` means "not set here" (fall back to the next level).

    ``rate`` is the number of images per ``period`` seconds (GCRA), ``burst`` how many may be taken
    at once, ``daily`` images per UTC day, ``max_in_flight`` unfinished jobs at a time.
    """

    rate: int | None = None
    period: float | None = None
    burst: int | None = None
    daily: int | None = None
    max_in_flight: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Limits:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in dict(raw or {}).items() if k in known})

    def over(self, base: Limits) -> Limits:
        """These limits where set, ``base`` elsewhere."""
        return Limits(
            **{
                name: getattr(self, name)
                if getattr(self, name) is not None
                else getattr(base, name)
                for name in self.__dataclass_fields__
            }
        )


@dataclass(frozen=True)
class CommunitySettings:
    """A community's moderation settings (a Discord server, a Slack workspace, the console).

    ``None`` in a limit means the bot's default from the environment applies.
    """

    community_id: str
    safety_level: str = "standard"
    default_variant: str | None = None
    allowed_channels: tuple[str, ...] = ()
    banned_users: tuple[str, ...] = ()
    blocked_terms: tuple[str, ...] = ()
    admin_roles: tuple[str, ...] = ()
    admin_users: tuple[str, ...] = ()
    allow_input_images: bool = True
    allow_cache: bool = True
    # The image format and prompt upsampling when a request names none (None: the bot default).
    default_format: str | None = None
    default_enhance: bool = False
    # Whether /imagine ... private (results only the requester sees) may be used here.
    allow_private: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Safety level per channel id (within the community level and the channel's cap).
    channel_safety: Mapping[str, str] = field(default_factory=dict)
    user_limits: Limits = field(default_factory=Limits)
    # Overrides per role id; a user with several roles gets the most generous value of each.
    role_limits: Mapping[str, Limits] = field(default_factory=dict)
    community_daily: int | None = None
    community_budget_usd: float | None = None
    # Admins (platform admins, admin roles, admin users) skip the per-user limits.
    admins_exempt: bool = True

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Limits):
                value = value.to_json()
            elif name == "role_limits":
                value = {role: limits.to_json() for role, limits in value.items()}
            elif isinstance(value, Mapping):
                value = dict(value)
            raw[name] = value
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CommunitySettings:
        known = cls.__dataclass_fields__
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                continue
            if key == "user_limits":
                value = Limits.from_json(value)
            elif key == "role_limits":
                value = {str(role): Limits.from_json(v) for role, v in dict(value or {}).items()}
            elif isinstance(value, list):
                value = tuple(value)
            values[key] = value
        return cls(**values)

    def evolve(self, **changes: Any) -> CommunitySettings:
        return replace(self, **changes)
