"""``imagine-bot doctor`` with Slack configured: token, scopes, Socket Mode's app token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ops.doctor import doctor
from bot.runtime.config import load_settings
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET


def _settings(data_dir: Path, fake: FakeSlack, **extra: str):  # type: ignore[no-untyped-def]
    return load_settings(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            **extra,
        },
        env_file=None,
    )


async def test_doctor_reports_the_workspace_and_the_mode(
    data_dir: Path, fake_slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await doctor(_settings(data_dir, fake_slack)) == 0
    out = capsys.readouterr().out
    assert "ok    slack: signed in to team Fake as imaginebot, HTTP mode" in out
    assert BOT_TOKEN not in out


async def test_doctor_names_missing_scopes(
    data_dir: Path, fake_slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.scopes = "commands,chat:write"
    assert await doctor(_settings(data_dir, fake_slack)) == 1
    assert "FAIL  slack: the bot token lacks the scopes files:read, files:write, users:read" in (
        capsys.readouterr().out
    )


async def test_doctor_names_what_each_missing_optional_scope_turns_off(
    data_dir: Path, fake_slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.scopes = "commands,chat:write,files:read,files:write,users:read,im:write"
    assert await doctor(_settings(data_dir, fake_slack)) == 0
    out = capsys.readouterr().out
    assert "ok    slack: signed in to team Fake as imaginebot, HTTP mode" in out
    assert "without app_mentions:read, @mentions in channels and threads go unseen" in out
    assert "without im:history, messages to the bot in its Messages tab go unseen" in out
    assert "im:write," not in out and "slack-manifest.yml" in out
    fake_slack.scopes += ",app_mentions:read,im:history"
    assert await doctor(_settings(data_dir, fake_slack)) == 0
    assert "without" not in capsys.readouterr().out


async def test_doctor_checks_the_tokens(
    data_dir: Path, fake_slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.token = "xoxb-another"
    assert await doctor(_settings(data_dir, fake_slack)) == 1
    assert "SLACK_BOT_TOKEN refused by Slack (invalid_auth)" in capsys.readouterr().out
    fake_slack.token = BOT_TOKEN
    settings = _settings(data_dir, fake_slack, SLACK_APP_TOKEN="xapp-1-wrong-000000000")
    assert await doctor(settings) == 1
    assert "SLACK_APP_TOKEN refused" in capsys.readouterr().out
    settings = _settings(data_dir, fake_slack, SLACK_APP_TOKEN=fake_slack.app_token)
    assert await doctor(settings) == 0
    assert "Socket Mode" in capsys.readouterr().out
