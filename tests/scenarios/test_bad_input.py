"""Bad input (RELIABILITY.md 28-33; 26-27, links to input images, are in ``test_input_urls.py``):
hostile images, filter evasions, hostile prompts, age-restricted content. Through the real service,
worker and platform adapters against their fakes on 127.0.0.1."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bot.domain.clock import ManualClock
from bot.domain.errors import InvalidImage, InvalidRequest, PolicyRefusal
from bot.domain.models import CommunitySettings, JobStatus
from bot.jobs.imagine import MAX_PROMPT_CHARS
from bot.media import images
from tests.discord.conftest import Bot
from tests.factories import make_request
from tests.fakes.discord import GUILD_ID, Recorded
from tests.scenarios.conftest import RecordingPort, opened_app, settle
from tests.slack.conftest import SlackBot
from tests.store_helpers import save_settings


def _png(width: int = 32, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(out, format="PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(side: int = 60_000) -> bytes:
    """A small file that claims side x side pixels of zeros (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def _gif(frames: int) -> bytes:
    out = io.BytesIO()
    first, *rest = [Image.new("P", (16, 16), n % 256) for n in range(frames)]
    first.save(out, format="GIF", save_all=True, append_images=rest)
    return out.getvalue()


def _other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, format=fmt)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.txt", "x" * 1000)
    return out.getvalue()


HOSTILE = {
    "decompression bomb": _png_bomb(),
    "huge dimensions": _png_bomb(9000),
    "many-frame gif": _gif(200),
    "bmp": _other_format("BMP"),
    "tiff": _other_format("TIFF"),
    "html disguised": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "zip disguised": _zip(),
    "truncated png": _png()[:60],
    "empty": b"",
}


@pytest.mark.parametrize(
    "name", ["decompression bomb", "huge dimensions", "many-frame gif", "bmp", "tiff"]
)
def test_s28_bombs_huge_animated_and_unlisted_formats_are_rejected(name: str) -> None:
    with pytest.raises(InvalidImage):
        images.clean(HOSTILE[name])


@pytest.mark.parametrize("name", ["html disguised", "zip disguised", "truncated png", "empty"])
def test_s29_files_disguised_as_images_are_rejected(name: str) -> None:
    with pytest.raises(InvalidImage):
        images.clean(HOSTILE[name])


def test_s29_exif_and_gps_are_stripped_before_any_re_upload() -> None:
    for fmt in ("JPEG", "PNG"):
        exif = Image.Exif()
        exif[0x010F] = "SecretCam"  # Make
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
        out = io.BytesIO()
        Image.new("RGB", (32, 32), (200, 10, 10)).save(out, format=fmt, exif=exif.tobytes())
        raw = out.getvalue()
        assert b"SecretCam" in raw
        cleaned = images.clean(raw)
        assert b"SecretCam" not in cleaned.data and b"Exif" not in cleaned.data
        with Image.open(io.BytesIO(cleaned.data)) as img:
            assert not img.getexif()
            assert img.size == (32, 32)


class HostileResultProvider:
    """A provider whose finished result is one of the hostile files."""

    name = "hostile"
    submit_is_idempotent = False
    concurrency = 4

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    async def submit(self, spec):  # type: ignore[no-untyped-def]
        from bot.providers.base import Submission

        return Submission(task={"id": f"h-{spec.job_id}"}, cost_usd=0.0)

    async def poll(self, task):  # type: ignore[no-untyped-def]
        from bot.providers.base import PollResult, PollState

        return PollResult(PollState.READY)

    async def fetch(self, task, result):  # type: ignore[no-untyped-def]
        return [self.payload]


@pytest.mark.parametrize("name", ["decompression bomb", "html disguised", "truncated png"])
async def test_s28_s29_a_hostile_result_is_never_posted(data_dir: Path, name: str) -> None:
    """Whatever a provider sends back goes through the same checks: the user gets a clear failure,
    nothing is posted or stored."""
    from bot.domain.catalog import load_catalog
    from bot.providers.router import Router

    async with opened_app(data_dir, clock=ManualClock()) as app:
        catalog = load_catalog()
        assert "offline" in catalog.variants["pro"].providers
        app.router = Router([_as_offline(HostileResultProvider(HOSTILE[name]))], clock=app.clock)
        port = RecordingPort()
        app.add_delivery("console", port)
        await app.start_workers()
        accepted = await app.service.imagine(make_request())
        await settle(app, {"console"})
        job = await app.service.job(accepted.job.id)
    assert job.status is JobStatus.FAILED and job.error_code == "bad_result"
    assert port.delivered == [] and [j.id for j in port.failures] == [job.id]
    assert not any((data_dir / "images").rglob("*.*")) if (data_dir / "images").exists() else True


def _as_offline(provider: HostileResultProvider) -> HostileResultProvider:
    provider.name = "offline"  # the catalog's variants name the offline provider
    return provider


EVASIONS = [
    "a d\u200bragon",  # zero-width space
    "a dra\u00adgon",  # soft hyphen
    "a \uff44\uff52\uff41\uff47\uff4f\uff4e",  # full-width
    "a \U0001d41d\U0001d42b\U0001d41a\U0001d420\U0001d428\U0001d427",  # mathematical bold
    "a dr\u0430g\u043en",  # Cyrillic a and o
    "a d\u0301r\u0308agon",  # combining marks
    "a DRAGON",
]


@pytest.mark.parametrize("prompt", EVASIONS)
async def test_s30_hidden_blocked_terms_are_still_caught(data_dir: Path, prompt: str) -> None:
    async with opened_app(data_dir) as app:
        await save_settings(
            app.store, CommunitySettings("c1", blocked_terms=("dragon",)), app.clock.now()
        )
        with pytest.raises(PolicyRefusal) as refused:
            await app.service.imagine(make_request(prompt=prompt))
        assert refused.value.code == "blocked_term"
        assert (await app.store.job_counts()).queued == 0
        [entry, *_] = await app.store.list_audit("c1", 5)
        assert entry.kind == "refusal" and entry.action == "blocked_term"


@pytest.mark.parametrize(
    "prompt", ["a snapdragon in bloom", "dragonfly wings", "the dragoon's horse"]
)
async def test_s30_ordinary_words_containing_a_term_pass(data_dir: Path, prompt: str) -> None:
    async with opened_app(data_dir) as app:
        await save_settings(
            app.store, CommunitySettings("c1", blocked_terms=("dragon",)), app.clock.now()
        )
        accepted = await app.service.imagine(make_request(prompt=prompt))
        assert accepted.job.request.prompt == prompt


async def test_s31_prompts_are_bounded_and_cleaned_in_the_core(data_dir: Path) -> None:
    async with opened_app(data_dir) as app:
        with pytest.raises(InvalidRequest) as too_long:
            await app.service.imagine(make_request(prompt="a" * (MAX_PROMPT_CHARS + 1)))
        assert f"{MAX_PROMPT_CHARS:,}" in too_long.value.user_message
        with pytest.raises(InvalidRequest):
            await app.service.imagine(make_request(prompt="\x00\x01\x02 \t\n\x7f"))
        accepted = await app.service.imagine(
            make_request(prompt="a fox\x00 at\x07 dawn\r\n\x1b[31mred\x1b[0m")
        )
        assert (await app.store.job_counts()).queued == 1
    assert accepted.job.request.prompt == "a fox at dawn [31mred[0m"


def _final_edit(bot: Bot, token: str) -> Recorded | None:
    for r in reversed(bot.fake.calls("update_original_webhook_message", token)):
        if r.files:
            return r
    return None


async def test_s31_discord_echoes_the_prompt_cleaned_with_mentions_suppressed(bot: Bot) -> None:
    prompt = "a fox\x00 at dawn\x07 @everyone @here <@&1500000000000000005> <@1400000000000000009>"
    token = bot.feed(bot.fake.imagine(prompt))
    edit = await bot.fake.wait_for(lambda: _final_edit(bot, token), what="the image")
    payload = edit.json
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert "\x00" not in embed["description"] and "\x07" not in embed["description"]
    assert embed["description"].startswith("a fox at dawn @everyone")
    for r in bot.fake.requests:
        if r.json and isinstance(r.json, dict) and "content" in r.json:
            assert r.json.get("allowed_mentions", {}).get("parse") == [], r.json


async def test_s31_discord_refuses_a_huge_prompt_with_the_limit_and_no_job(bot: Bot) -> None:
    token = bot.feed(bot.fake.imagine("a castle " * 1000))

    def told() -> list[Recorded]:
        return bot.fake.calls("execute_webhook", token) + [
            r
            for r in bot.fake.calls("update_original_webhook_message", token)
            if "2,000" in (r.json or {}).get("content", "")
        ]

    [reply, *_] = await bot.fake.wait_for(told, what="the refusal")
    assert "2,000" in reply.json["content"]
    counts = await bot.app.store.job_counts()
    assert counts.queued == 0 and counts.running == 0


async def test_s31_slack_escapes_mentions_and_drops_control_characters(
    slack_bot: SlackBot,
) -> None:
    await slack_bot.command(
        "<!everyone> <!subteam^S0123|@artists> a cat\x00\x07 <@U999> --size 64x64"
    )
    await slack_bot.settle()
    [job] = await slack_bot.jobs()
    assert job.status is JobStatus.DELIVERED
    assert "\x00" not in job.request.prompt and "\x07" not in job.request.prompt
    for message in slack_bot.fake.posted("C1"):
        text = str(message.blocks) + (message.text or "")
        for mention in ("<!everyone>", "<!subteam^S0123|@artists>", "<@U999>"):
            assert mention not in text
        assert "\x00" not in text


async def test_s32_adult_applies_only_in_age_restricted_channels_and_is_rechecked(
    data_dir: Path,
) -> None:
    """A community set to adult: outside an age-restricted channel the job runs at the standard
    tolerance; inside one, adult. A thread inherits its parent's flag (the adapter passes the
    parent's). When the channel loses its age restriction before posting, nothing is posted."""
    async with opened_app(data_dir) as app:
        await save_settings(
            app.store, CommunitySettings("c1", safety_level="adult"), app.clock.now()
        )
        open_channel = await app.service.imagine(make_request(channel_age_restricted=False))
        restricted = await app.service.imagine(
            make_request(channel_id="nsfw", channel_age_restricted=True, prompt="a thread")
        )
        assert open_channel.job.request.safety_tolerance == 2
        # Adult is BFL's 6, capped by the model's own range (FLUX.2 [pro]: 5).
        assert restricted.job.request.safety_tolerance == 5

        class Unrestricted(RecordingPort):
            async def channel_age_restricted(self, job):  # type: ignore[no-untyped-def]
                return False  # a moderator turned the flag off meanwhile

        port = Unrestricted()
        app.add_delivery("console", port)
        await app.start_workers()
        await settle(app, {"console"})
        finished = await app.service.job(restricted.job.id)
        posted = await app.service.job(open_channel.job.id)
    assert posted.status is JobStatus.DELIVERED
    assert finished.status is JobStatus.FAILED and finished.error_code == "safety_recheck"
    assert [job.id for job, _ in port.delivered] == [posted.id]
    assert [job.id for job in port.failures] == [finished.id]


@pytest.mark.parametrize(("nsfw", "tolerance"), [(False, 2), (True, 5)])
async def test_s32_discord_adult_only_in_an_age_restricted_channel(
    bot: Bot, nsfw: bool, tolerance: int
) -> None:
    await save_settings(
        bot.app.store, CommunitySettings(GUILD_ID, safety_level="adult"), bot.app.clock.now()
    )
    token = bot.feed(bot.fake.imagine("a moody portrait", nsfw=nsfw))
    edit = await bot.fake.wait_for(lambda: _final_edit(bot, token), what="the image")
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    job = await bot.app.service.job(job_id)
    assert job.request.safety_tolerance == tolerance
