"""/readyz reports the Slack side: not ready until the bot has signed in with its token."""

from __future__ import annotations

import asyncio

from tests.slack.conftest import SlackBot


async def test_readyz_waits_for_slack_sign_in(slack_bot: SlackBot) -> None:
    base = slack_bot.url.removesuffix("/slack/events")
    async with slack_bot.http.get(f"{base}/readyz") as before:
        assert before.status == 503
        assert (await before.json())["problems"] == {"slack": "not signed in (auth.test)"}
    stop = asyncio.Event()
    runner = asyncio.create_task(slack_bot.adapter.run(stop))
    try:
        for _ in range(600):
            async with slack_bot.http.get(f"{base}/readyz") as ready:
                if ready.status == 200:
                    assert (await ready.json())["checks"] == ["slack", "store"]
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("never ready")
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
