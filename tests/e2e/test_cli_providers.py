"""``imagine-bot imagine ... -o out.png`` in a real process against each provider's fake, set up
with nothing but the configuration contract's variables."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import bot_env
from tests.fakes.bfl import FakeBfl
from tests.fakes.fal import FakeFal
from tests.fakes.provider_common import Fault
from tests.fakes.together import FakeTogether

pytestmark = pytest.mark.slow


async def run_bot(args: list[str], data_dir: Path, **extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=bot_env(data_dir, **extra),
        cwd=str(data_dir.parent),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode or 0, out.decode(), err.decode()


def contract_env(name: str, fake: Any) -> dict[str, str]:
    key, base = {
        "bfl": ("BFL_API_KEY", "BFL_API_BASE"),
        "fal": ("FAL_KEY", "FAL_QUEUE_BASE"),
        "together": ("TOGETHER_API_KEY", "TOGETHER_API_BASE"),
    }[name]
    env = {"IMAGINE_PROVIDERS": name, key: fake.key, base: fake.base_url}
    if name == "fal":
        env["FAL_REST_BASE"] = fake.base_url  # the fake serves fal's storage API too
    return env


@pytest.mark.parametrize(
    ("name", "fake_class"), [("bfl", FakeBfl), ("fal", FakeFal), ("together", FakeTogether)]
)
async def test_imagine_writes_the_image_from_each_provider(
    tmp_path: Path, name: str, fake_class: Any
) -> None:
    fake = await fake_class().start()
    try:
        target = tmp_path / "out.png"
        code, out, err = await run_bot(
            ["imagine", "a harbour at night", "--model", "pro", "--ar", "16:9", "-o", str(target)],
            tmp_path / "data",
            IMAGINE_LOG_LEVEL="DEBUG",
            **contract_env(name, fake),
        )
        assert code == 0, err
        assert out.strip() == str(target)
        with Image.open(target) as image:
            assert image.format == "PNG"
            assert image.size[0] * 9 == image.size[1] * 16
        assert fake.paid_tasks == 1
        assert fake.key not in out + err  # DEBUG logs included
    finally:
        await fake.aclose()


async def test_imagine_fails_clearly_when_the_submit_outcome_is_unknown(tmp_path: Path) -> None:
    fake = await FakeBfl().start()
    try:
        fake.fail("submit", Fault(drop=True, after_accept=True))
        code, _, err = await run_bot(
            ["imagine", "a harbour", "-o", str(tmp_path / "out.png")],
            tmp_path / "data",
            **contract_env("bfl", fake),
        )
        assert code == 5
        assert "not sent again" in err
        assert fake.paid_tasks == 1
        assert len(fake.recorded("POST")) == 1
        assert not (tmp_path / "out.png").exists()
    finally:
        await fake.aclose()


async def test_imagine_reports_moderation(tmp_path: Path) -> None:
    fake = await FakeBfl().start()
    try:
        fake.next_outcomes("Content Moderated")
        code, _, err = await run_bot(
            ["imagine", "a harbour", "-o", str(tmp_path / "out.png")],
            tmp_path / "data",
            **contract_env("bfl", fake),
        )
        assert code == 4
        assert "safety filter" in err
    finally:
        await fake.aclose()


async def test_imagine_reports_fal_content_policy_as_moderation(tmp_path: Path) -> None:
    fake = await FakeFal().start()
    try:
        fake.content_policy_next.append("submit")
        code, _, err = await run_bot(
            ["imagine", "a harbour", "-o", str(tmp_path / "out.png")],
            tmp_path / "data",
            **contract_env("fal", fake),
        )
        assert code == 4
        assert "safety filter" in err
        assert not (tmp_path / "out.png").exists()
    finally:
        await fake.aclose()


async def test_doctor_checks_each_configured_key(tmp_path: Path) -> None:
    fakes = [await FakeBfl().start(), await FakeFal().start(), await FakeTogether().start()]
    try:
        env = {
            **contract_env("bfl", fakes[0]),
            **contract_env("fal", fakes[1]),
            **contract_env("together", fakes[2]),
            "IMAGINE_PROVIDERS": "bfl,fal,together",
        }
        code, out, _ = await run_bot(["doctor"], tmp_path / "data", **env)
        assert code == 0, out
        for name in ("bfl", "fal", "together"):
            assert any(
                line.startswith(f"ok    provider {name}: key accepted") for line in out.splitlines()
            ), out
        assert fakes[1].uploads_initiated == 1  # fal's lock shows on an upload, not a status read
        fakes[1].exhaust_balance()
        code, out, _ = await run_bot(["doctor"], tmp_path / "data", **env)
        assert code == 1
        line = next(line for line in out.splitlines() if line.startswith("FAIL  provider fal:"))
        assert "balance is exhausted" in line and "refused" not in line
        fakes[1].locked = None
        env["FAL_KEY"] = "wrong-fal-key-123456"
        code, out, err = await run_bot(["doctor"], tmp_path / "data", **env)
        assert code == 1
        assert any(line.startswith("FAIL  provider fal:") for line in out.splitlines()), out
        assert "wrong-fal-key-123456" not in out + err
    finally:
        for fake in fakes:
            await fake.aclose()


async def test_models_prints_every_pinned_id_with_its_price_and_rules(tmp_path: Path) -> None:
    from bot.domain.catalog import load_catalog

    code, out, _ = await run_bot(["models"], tmp_path / "data")
    assert code == 0
    for variant in load_catalog().variants.values():
        assert f"{variant.name}" in out and variant.label in out
        for model in variant.providers.values():
            assert model.model_id in out
            if model.edit_model_id:
                assert model.edit_model_id in out
    assert "flux-2-pro  $0.030/image +$0.015/extra MP +$0.015/input MP" in out
    assert "fal-ai/flux-2-flex/edit  $0.050/MP (rounded up)" in out
    assert "sizes: multiples of 32, sides 256-1440 px" in out  # FLUX1.1 [pro]
