"""The ``Provider`` port: submit a generation, poll it, fetch its images."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.domain.catalog import ProviderModel, Variant
from bot.domain.models import DEFAULT_OUTPUT_FORMAT


@dataclass(frozen=True)
class GenerationSpec:
    """Everything a provider needs for one job, already resolved for that provider."""

    job_id: str
    prompt: str
    variant: Variant
    model: ProviderModel
    width: int
    height: int
    seed: int
    count: int = 1
    aspect_ratio: str | None = None
    # Input images as URLs the provider can fetch, or ``data:`` URLs.
    input_images: tuple[str, ...] = ()
    safety_tolerance: int = 2
    webhook_url: str | None = None
    # The image format asked for: "jpeg", "png" or "webp" (``OUTPUT_FORMATS``). A provider that
    # cannot make the format asks for PNG (lossless) instead; see ``Provider.output_formats``.
    output_format: str = DEFAULT_OUTPUT_FORMAT
    # Prompt upsampling where the provider offers it; pinned off everywhere else it can be set.
    enhance: bool = False
    # Inference steps and guidance where the variant takes them (else its catalog defaults).
    steps: int | None = None
    guidance: float | None = None

    @property
    def sampling(self) -> tuple[int | None, float | None]:
        """``(steps, guidance)`` to send: the asked values, else the variant's defaults, each
        None where the variant takes none."""
        steps = self.variant.steps
        guidance = self.variant.guidance
        return (
            int(steps.check(self.steps, "Steps", self.variant.label)) if steps else None,
            float(guidance.check(self.guidance, "Guidance", self.variant.label))
            if guidance
            else None,
        )

    def tuning(self) -> dict[str, Any]:
        """The provider fields for enhancement, steps and guidance, named as ``model`` names
        them (``enhance_field``, ``steps_field``, ``guidance_field``): each sent where the
        model takes it, none where its schema lacks it."""
        fields: dict[str, Any] = {}
        enhance = self.model.extra.get("enhance_field")
        if enhance:
            fields[str(enhance)] = bool(self.enhance)
        steps, guidance = self.sampling
        if steps is not None and self.model.extra.get("steps_field"):
            fields[str(self.model.extra["steps_field"])] = steps
        if guidance is not None and self.model.extra.get("guidance_field"):
            fields[str(self.model.extra["guidance_field"])] = guidance
        return fields

    def sends(self, field: str) -> bool:
        """False for a field the model's schema lacks (``omit`` in its catalog entry)."""
        return field not in (self.model.extra.get("omit") or ())

    @property
    def model_id(self) -> str:
        if self.input_images and self.model.edit_model_id:
            return self.model.edit_model_id
        return self.model.model_id


@dataclass(frozen=True)
class Submission:
    """A task the provider accepted. ``task`` is stored before anything waits on it."""

    task: Mapping[str, Any]
    cost_usd: float | None = None


class PollState(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    MODERATED = "moderated"
    FAILED = "failed"


@dataclass(frozen=True)
class PollResult:
    state: PollState
    # Result URLs, or ``data:`` URLs for providers that answer with the bytes.
    outputs: tuple[str, ...] = ()
    queue_position: int | None = None
    # How far a pending task is, 0..1, where the provider says (BFL does; fal and Together don't).
    progress: float | None = None
    retry_after: float | None = None
    message: str | None = None
    # What the provider said of a failure, already redacted, fit to show the user.
    reason: str | None = None
    cost_usd: float | None = None
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def format_for(wanted: str, offered: tuple[str, ...]) -> str:
    """The format to ask a provider for: the one wanted where it makes it, else PNG."""
    return wanted if wanted in offered else "png"


class Provider(Protocol):
    name: str
    # True only where submitting again cannot pay twice (the offline renderer).
    submit_is_idempotent: bool
    # The most tasks this provider may have active at once, across this process.
    concurrency: int

    async def submit(self, spec: GenerationSpec) -> Submission: ...

    async def poll(self, task: Mapping[str, Any]) -> PollResult: ...

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]: ...

    async def cancel(self, task: Mapping[str, Any]) -> None: ...
