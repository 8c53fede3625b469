"""The core end to end in one process: service -> store -> worker -> provider -> delivery port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.domain.errors import InvalidRequest, PolicyRefusal, ProviderModerated, ProviderUnavailable
from bot.domain.models import CommunitySettings, Job, JobStatus
from bot.ports import OutImage, Progress
from bot.providers.base import GenerationSpec, PollResult, PollState, Submission
from bot.providers.offline import OfflineProvider
from bot.providers.polling import Schedule
from bot.providers.router import Router
from bot.runtime.app import App
from tests.factories import make_request
from tests.store_helpers import save_settings


@dataclass
class RecordingPort:
    delivered: list[tuple[Job, list[OutImage]]] = field(default_factory=list)
    failures: list[Job] = field(default_factory=list)
    progress_seen: list[str] = field(default_factory=list)

    async def progress(self, job: Job, progress: Progress) -> None:
        self.progress_seen.append(progress.stage)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.delivered.append((job, list(images)))
        return {"message": f"m-{job.id}"}

    async def notify_failure(self, job: Job) -> None:
        self.failures.append(job)


class ScriptedProvider(OfflineProvider):
    """The offline renderer under another name, told to refuse or moderate."""

    def __init__(self, name: str, *, refuse: bool = False, moderate: bool = False) -> None:
        super().__init__()
        self.name = name
        self.submit_is_idempotent = False
        self.refuse = refuse
        self.moderate = moderate
        self.submits: list[GenerationSpec] = []

    async def submit(self, spec: GenerationSpec) -> Submission:
        self.submits.append(spec)
        if self.refuse:
            raise ProviderUnavailable("busy", provider=self.name, status=503)
        return await super().submit(spec)

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        if self.moderate:
            return PollResult(PollState.MODERATED, message="Content Moderated")
        return await super().poll(task)


def with_providers(app: App, *providers: OfflineProvider) -> None:
    app.router = Router(list(providers))


async def run_one(app: App, port: RecordingPort, **request: Any) -> Job:
    app.add_delivery("console", port)
    await app.start_workers()
    accepted = await app.service.imagine(make_request(**request))
    return await app.service.wait(accepted.job.id, timeout=20)


async def test_a_job_is_delivered_with_its_image_stored(app: App) -> None:
    port = RecordingPort()
    job = await run_one(app, port, aspect_ratio="16:9", seed=7)
    assert job.status is JobStatus.DELIVERED and job.outcome_sent
    assert job.delivery == {"message": f"m-{job.id}"}
    [(_, images)] = port.delivered
    assert images[0].width * 9 == images[0].height * 16
    assert await app.blobs.get(job.images[0]) == images[0].data
    assert "generating" in port.progress_seen


async def test_refused_requests_store_nothing(app: App) -> None:
    with pytest.raises(InvalidRequest, match="describe the image"):
        await app.service.imagine(make_request(prompt=" \x00\x07 "))
    await save_settings(app.store, CommunitySettings("c1", banned_users=("u1",)), 0)
    with pytest.raises(PolicyRefusal, match="not allowed"):
        await app.service.imagine(make_request())
    assert (await app.store.job_counts()).queued == 0


async def test_prompts_are_cleaned_and_bounded(app: App) -> None:
    accepted = await app.service.imagine(make_request(prompt="a\x00 fox\n\n at\tdawn "))
    assert accepted.job.request.prompt == "a fox at dawn"
    with pytest.raises(InvalidRequest, match="at most 2,000 characters"):
        await app.service.imagine(make_request(prompt="x" * 5000))


async def test_failover_passes_a_refused_job_to_the_next_provider(app: App) -> None:
    busy, good = ScriptedProvider("bfl", refuse=True), ScriptedProvider("fal")
    with_providers(app, busy, good)
    job = await run_one(app, RecordingPort())
    assert job.status is JobStatus.DELIVERED
    assert job.provider == "fal" and job.model_id == "fal-ai/flux-2-pro"
    assert len(busy.submits) == 1 and len(good.submits) == 1


async def test_a_moderated_job_tells_its_user_and_posts_nothing(app: App) -> None:
    with_providers(app, ScriptedProvider("offline", moderate=True))
    port = RecordingPort()
    job = await run_one(app, port)
    assert job.status is JobStatus.MODERATED and job.outcome_sent
    assert port.delivered == []
    [failed] = port.failures
    assert "safety filter" in (failed.error_message or "")
    assert job.id in (failed.error_message or "")


async def test_moderation_at_submit_is_terminal(app: App) -> None:
    class Refusing(ScriptedProvider):
        async def submit(self, spec: GenerationSpec) -> Submission:
            self.submits.append(spec)
            raise ProviderModerated("Request Moderated", provider=self.name)

    provider = Refusing("offline")
    with_providers(app, provider)
    job = await run_one(app, RecordingPort())
    assert job.status is JobStatus.MODERATED
    assert len(provider.submits) == 1


async def test_the_same_event_twice_makes_one_job(app: App) -> None:
    first = await app.service.imagine(make_request(dedupe_key="evt-9"))
    second = await app.service.imagine(make_request(dedupe_key="evt-9"))
    assert second.duplicate and second.job.id == first.job.id


async def test_follow_ups_reuse_the_parent(app: App) -> None:
    port = RecordingPort()
    parent = await run_one(app, port, seed=41, aspect_ratio="3:2")
    vary = await app.service.follow_up(parent.id, "vary", make_request())
    assert vary.job.seed == 42 and (vary.job.width, vary.job.height) == (
        parent.width,
        parent.height,
    )
    upscale = await app.service.follow_up(parent.id, "upscale", make_request())
    assert upscale.job.variant == "max" and upscale.job.seed == 41
    edit = await app.service.follow_up(parent.id, "edit", make_request(), prompt="now in snow")
    assert edit.job.request.prompt == "now in snow"
    assert edit.job.request.input_images == (f"blob:{parent.images[0]}",)
    edited = await app.service.wait(edit.job.id, timeout=20)
    assert edited.status is JobStatus.DELIVERED


async def test_only_the_requester_or_a_moderator_may_cancel(app: App) -> None:
    accepted = await app.service.imagine(make_request(user_id="alice"))
    with pytest.raises(PolicyRefusal):
        await app.service.cancel(accepted.job.id, user_id="mallory")
    cancelled = await app.service.cancel(accepted.job.id, user_id="mallory", is_admin=True)
    assert cancelled.status is JobStatus.CANCELLED


class ProgressingProvider(ScriptedProvider):
    """Pending twice with progress, then ready; its tasks say they report progress."""

    def __init__(self) -> None:
        super().__init__("offline")
        self.answers = [0.98, 0.99]
        self.polls = 0

    async def submit(self, spec: GenerationSpec) -> Submission:
        submitted = await super().submit(spec)
        task = {**submitted.task, "eta": 0.8, "reports_progress": True}
        return Submission(task, submitted.cost_usd)

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        self.polls += 1
        if self.answers:
            return PollResult(PollState.PENDING, progress=self.answers.pop(0))
        return await super().poll(task)


async def test_the_worker_feeds_each_answer_s_progress_to_its_schedule(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, float | None]] = []

    class Recording(Schedule):
        def next_delay(
            self, elapsed: float, progress: float | None = None, retry_after: float | None = None
        ) -> float:
            seen.append((self.reports_progress, progress))
            return super().next_delay(elapsed, progress, retry_after)

    monkeypatch.setattr("bot.jobs.wait.Schedule", Recording)
    provider = ProgressingProvider()
    with_providers(app, provider)
    job = await run_one(app, RecordingPort())
    assert job.status is JobStatus.DELIVERED
    assert seen == [(True, 0.98), (True, 0.99)]
    assert provider.polls == 3
