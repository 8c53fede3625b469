"""Policy through the whole core: safety tolerance sent and re-checked, refunds, the image cache."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.community import Actor, SetValue
from bot.domain.community_settings import CACHE, CHANNEL_SAFETY, SAFETY
from bot.domain.models import Job, JobStatus
from bot.runtime.app import App
from tests.factories import make_request
from tests.scenarios.test_job_flow import RecordingPort, ScriptedProvider, with_providers

OWNER = Actor("owner", is_platform_admin=True)


@dataclass
class ChannelPort(RecordingPort):
    """A port that can tell whether a channel is age-restricted right now."""

    age_restricted_now: bool | None = None

    async def channel_age_restricted(self, job: Job) -> bool | None:
        return self.age_restricted_now


async def _start(app: App, port: RecordingPort, provider: ScriptedProvider) -> None:
    with_providers(app, provider)
    app.add_delivery("console", port)
    await app.start_workers()


async def test_adult_applies_only_in_age_restricted_channels(app: App) -> None:
    provider = ScriptedProvider("offline")
    port = RecordingPort()
    await _start(app, port, provider)
    await app.service.update_settings("c1", OWNER, SetValue(SAFETY, "adult"))
    open_job = await app.service.imagine(make_request(channel_id="general"))
    nsfw_job = await app.service.imagine(
        make_request(channel_id="nsfw", channel_age_restricted=True)
    )
    for accepted in (open_job, nsfw_job):
        done = await app.service.wait(accepted.job.id, timeout=20)
        assert done.status is JobStatus.DELIVERED
    sent = {spec.job_id: spec.safety_tolerance for spec in provider.submits}
    # flux-2-pro allows 0-5: adult (6) is held to 5 there; outside, standard (2).
    assert sent == {open_job.job.id: 2, nsfw_job.job.id: 5}


async def test_a_channel_override_is_capped_outside_age_restricted_channels(app: App) -> None:
    provider = ScriptedProvider("offline")
    await _start(app, RecordingPort(), provider)
    await app.service.update_settings("c1", OWNER, SetValue(SAFETY, "strict"))
    await app.service.update_settings("c1", OWNER, SetValue(CHANNEL_SAFETY, "relaxed", key="art"))
    art = await app.service.imagine(make_request(channel_id="art"))
    other = await app.service.imagine(make_request(channel_id="other"))
    assert art.job.request.safety_tolerance == 2
    assert other.job.request.safety_tolerance == 0


async def test_an_image_is_not_posted_when_the_channel_lost_its_age_restriction(
    app: App,
) -> None:
    provider = ScriptedProvider("offline")
    port = ChannelPort(age_restricted_now=False)
    await _start(app, port, provider)
    await app.service.update_settings("c1", OWNER, SetValue(SAFETY, "adult"))
    accepted = await app.service.imagine(make_request(channel_age_restricted=True))
    done = await app.service.wait(accepted.job.id, timeout=20)
    assert done.status is JobStatus.FAILED and done.error_code == "safety_recheck"
    assert port.delivered == []
    assert [job.id for job in port.failures] == [accepted.job.id]
    assert "safety settings changed" in (port.failures[0].error_message or "")


async def test_a_moderated_job_gives_its_quota_back(app: App) -> None:
    provider = ScriptedProvider("offline", moderate=True)
    port = RecordingPort()
    with_providers(app, provider)
    app.add_delivery("console", port)
    accepted = await app.service.imagine(make_request(count=2))
    # Read while the job is surely still queued: no worker runs yet to finish it first.
    assert (await app.service.quota("c1", "u1")).used_today == 2
    await app.start_workers()
    done = await app.service.wait(accepted.job.id, timeout=20)
    assert done.status is JobStatus.MODERATED
    report = await app.service.quota("c1", "u1")
    assert report.used_today == 0 and report.in_flight == 0


async def test_an_identical_seeded_request_is_served_from_the_stored_image(app: App) -> None:
    provider = ScriptedProvider("offline")
    port = RecordingPort()
    await _start(app, port, provider)
    first = await app.service.imagine(make_request(seed=42))
    first_done = await app.service.wait(first.job.id, timeout=20)
    second = await app.service.imagine(make_request(seed=42, user_id="u2"))
    second_done = await app.service.wait(second.job.id, timeout=20)
    assert second_done.status is JobStatus.DELIVERED
    assert len(provider.submits) == 1
    assert second_done.images == first_done.images and second_done.cost_usd == 0
    assert [img.data for img in port.delivered[1][1]] == [img.data for img in port.delivered[0][1]]
    # Asked not to, or with the cache off, it is made anew.
    fresh = await app.service.imagine(make_request(seed=42, use_cache=False))
    await app.service.wait(fresh.job.id, timeout=20)
    await app.service.update_settings("c1", OWNER, SetValue(CACHE, False))
    off = await app.service.imagine(make_request(seed=42))
    await app.service.wait(off.job.id, timeout=20)
    assert len(provider.submits) == 3


async def test_identical_requests_in_flight_share_one_provider_job(app: App) -> None:
    provider = ScriptedProvider("offline")
    port = RecordingPort()
    with_providers(app, provider)
    app.add_delivery("console", port)
    first = await app.service.imagine(make_request(seed=9, dedupe_key="e1"))
    second = await app.service.imagine(make_request(seed=9, user_id="u2", dedupe_key="e2"))
    third = await app.service.imagine(make_request(seed=9, user_id="u3", dedupe_key="e3"))
    assert second.job.provider_task == {"follows": first.job.id}
    assert third.job.provider_task == {"follows": first.job.id}
    await app.start_workers()
    done = [await app.service.wait(a.job.id, timeout=20) for a in (first, second, third)]
    assert [job.status for job in done] == [JobStatus.DELIVERED] * 3
    assert len(provider.submits) == 1
    # Each requester got exactly one post of their own, all of the same image.
    assert sorted(job.id for job, _ in port.delivered) == sorted(job.id for job in done)
    assert len({images[0].data for _, images in port.delivered}) == 1


async def test_followers_share_moderation_and_survive_a_cancelled_leader(app: App) -> None:
    provider = ScriptedProvider("offline", moderate=True)
    port = RecordingPort()
    with_providers(app, provider)
    app.add_delivery("console", port)
    leader = await app.service.imagine(make_request(seed=3))
    follower = await app.service.imagine(make_request(seed=3, user_id="u2"))
    cancelled = await app.service.imagine(make_request(seed=4))
    survivor = await app.service.imagine(make_request(seed=4, user_id="u2"))
    assert survivor.job.provider_task == {"follows": cancelled.job.id}
    await app.service.cancel(cancelled.job.id, user_id="u1")
    await app.start_workers()
    assert (await app.service.wait(follower.job.id, timeout=20)).status is JobStatus.MODERATED
    assert (await app.service.wait(leader.job.id, timeout=20)).status is JobStatus.MODERATED
    # The cancelled leader never ran: its follower made its own (and was moderated too).
    assert (await app.service.wait(survivor.job.id, timeout=20)).status is JobStatus.MODERATED
    assert sorted(spec.job_id for spec in provider.submits) == sorted(
        [leader.job.id, survivor.job.id]
    )
    # Each requester told once; the one who cancelled saw it at the cancel.
    assert sorted(job.id for job in port.failures) == sorted(
        [leader.job.id, follower.job.id, survivor.job.id]
    )
