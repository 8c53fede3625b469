"""Together AI's provider on a mock transport: its documented base URL and where its result links
may lead."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.errors import DownloadRefused
from bot.providers.base import GenerationSpec, PollState
from bot.providers.together import TogetherProvider
from bot.runtime.config import load_settings

KEY = "together-key-0123456789"


def spec(**kw: Any) -> GenerationSpec:
    variant = load_catalog().variants["pro"]
    model = variant.model_for("together")
    assert model is not None
    values: dict[str, Any] = {
        "job_id": "j1",
        "prompt": "p",
        "variant": variant,
        "model": model,
        "width": 1024,
        "height": 1024,
        "seed": 1,
    }
    values.update(kw)
    return GenerationSpec(**values)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def test_the_default_base_is_api_together_ai() -> None:
    # https://docs.together.ai/reference/post-images-generations
    assert load_settings({}, env_file=None).together_api_base == "https://api.together.ai/v1"
    provider = TogetherProvider(httpx.AsyncClient(), api_key=KEY, clock=ManualClock())
    assert provider.base_url == "https://api.together.ai/v1"


async def test_result_redirects_are_followed_only_to_allowed_hosts() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/v1/images/generations":
            return httpx.Response(
                200,
                json={
                    "id": "t1",
                    "object": "list",
                    "data": [
                        {"index": 0, "url": "https://api.together.ai/imgproxy/ok", "type": "url"},
                        {"index": 1, "url": "https://api.together.ai/imgproxy/bad", "type": "url"},
                    ],
                },
            )
        if request.url.path == "/imgproxy/ok":
            return httpx.Response(302, headers={"location": "https://api.together.xyz/r/1.png"})
        if request.url.path == "/imgproxy/bad":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest"})
        if request.url.host == "api.together.xyz":
            return httpx.Response(200, content=png(), headers={"content-type": "image/png"})
        raise AssertionError(f"fetched {request.url}")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = TogetherProvider(http, api_key=KEY, clock=ManualClock())
    submission = await provider.submit(spec(count=2))
    assert seen[0] == "https://api.together.ai/v1/images/generations"
    result = await provider.poll(submission.task)
    assert result.state is PollState.READY
    assert await provider.downloader.fetch(result.outputs[0]) == png()
    with pytest.raises(DownloadRefused):
        await provider.downloader.fetch(result.outputs[1])
    assert not any("169.254.169.254" in url for url in seen)
