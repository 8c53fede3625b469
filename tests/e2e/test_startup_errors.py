"""Startup errors of the real ``imagine-bot`` process: one line naming the setting, the exit code,
and no traceback, for each configuration or network problem a self-hoster meets first."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import bot_env, run_bot
from tests.fakes.discord import BOT_TOKEN as DISCORD_BOT_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.slow

SLACK_TOKEN = "xoxb-test-token-000000000000"
SLACK_APP_TOKEN = "xapp-1-test-app-token-0000000000"


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


async def run_process(args: list[str], data_dir: Path, timeout: float = 60, **env: str) -> Finished:
    """The real process, awaited without blocking the fakes that run in this event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=bot_env(data_dir, **env),
        cwd=data_dir.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(SLACK_TOKEN, SLACK_APP_TOKEN).start()
    yield fake
    await fake.aclose()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.aclose()


def slack_env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": "test-signing-secret-5f2a9c",
        "SLACK_API_URL": fake.api_url,
        "IMAGINE_HTTP_PORT": "0",
        **extra,
    }


def discord_env(fake: FakeDiscord, **extra: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": DISCORD_BOT_TOKEN,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "IMAGINE_HTTP_PORT": "0",
        **extra,
    }


def assert_one_clean_line(done: Finished, code: int, line: str, *secrets: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.last_line.startswith(line), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for secret in secrets:
        assert secret not in done.stderr + done.stdout


async def test_a_refused_slack_token_stops_the_bot_with_exit_2(
    fake_slack: FakeSlack, data_dir: Path
) -> None:
    done = await run_process(
        ["run"], data_dir, **slack_env(fake_slack, SLACK_BOT_TOKEN="xoxb-not-the-right-one")
    )
    assert_one_clean_line(
        done,
        2,
        "imagine-bot: configuration error: SLACK_BOT_TOKEN: Slack refused the token (invalid_auth)",
        "xoxb-not-the-right-one",
    )


async def test_a_refused_slack_app_token_stops_the_bot_with_exit_2(
    fake_slack: FakeSlack, data_dir: Path
) -> None:
    done = await run_process(
        ["run"], data_dir, **slack_env(fake_slack, SLACK_APP_TOKEN="xapp-1-wrong-app-token")
    )
    assert_one_clean_line(
        done,
        2,
        "imagine-bot: configuration error: SLACK_APP_TOKEN: Slack refused the app token "
        "(invalid_auth)",
        "xapp-1-wrong-app-token",
    )


async def test_a_port_in_use_names_the_http_settings(
    fake_slack: FakeSlack, data_dir: Path, busy_port: int
) -> None:
    done = await run_process(
        ["run"], data_dir, **slack_env(fake_slack, IMAGINE_HTTP_PORT=str(busy_port))
    )
    assert_one_clean_line(
        done,
        2,
        "imagine-bot: configuration error: IMAGINE_HTTP_HOST/IMAGINE_HTTP_PORT: "
        f"127.0.0.1:{busy_port} is already in use",
    )


def test_the_console_with_a_port_in_use_says_the_same_in_its_only_line(
    tmp_path: Path, busy_port: int
) -> None:
    done = run_bot(["run"], data_dir=tmp_path / "data", IMAGINE_HTTP_PORT=str(busy_port))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "imagine-bot: configuration error: IMAGINE_HTTP_HOST/IMAGINE_HTTP_PORT: "
        f"127.0.0.1:{busy_port} is already in use; stop what listens there or choose another port"
    ]


def test_a_host_that_is_not_this_machine_names_the_http_settings(tmp_path: Path) -> None:
    done = run_bot(
        ["run"], data_dir=tmp_path / "data", IMAGINE_HTTP_HOST="192.0.2.1", IMAGINE_HTTP_PORT="0"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "imagine-bot: configuration error: IMAGINE_HTTP_HOST/IMAGINE_HTTP_PORT: 192.0.2.1 is "
        "not an address of this machine (use 127.0.0.1 or 0.0.0.0)"
    ]


@pytest.mark.parametrize("command", [["run"], ["imagine", "a lighthouse"]])
def test_a_data_folder_that_is_a_file_names_imagine_data_dir(
    tmp_path: Path, command: list[str]
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    done = run_bot(command, data_dir=blocker)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"imagine-bot: configuration error: IMAGINE_DATA_DIR: {blocker} is a file, not a folder"
    ]


def test_a_data_folder_that_cannot_be_created_names_imagine_data_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = run_bot(["run"], data_dir=tmp_path / "file" / "data", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "imagine-bot: configuration error: IMAGINE_DATA_DIR: cannot create "
        f"{tmp_path / 'file' / 'data'}: Not a directory"
    ]


async def test_sync_commands_with_a_refused_token_says_so_in_one_line(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    done = await run_process(
        ["sync-commands"], data_dir, **discord_env(fake_discord, DISCORD_TOKEN="wrong.token.x")
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "imagine-bot: DISCORD_TOKEN: Discord refused the token"
    ]
    assert "wrong.token.x" not in done.stdout + done.stderr
    assert fake_discord.calls("bulk_set_application_commands") == []


async def test_sync_commands_without_network_says_so_in_one_line(data_dir: Path) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    done = await run_process(
        ["sync-commands"], data_dir, DISCORD_TOKEN=DISCORD_BOT_TOKEN, DISCORD_API_BASE=api
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"imagine-bot: could not reach Discord at {api} (ClientConnectorError); check the network"
    ]


async def test_a_discord_api_that_cannot_be_reached_stops_the_bot_naming_it(
    data_dir: Path,
) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    done = await run_process(
        ["run"],
        data_dir,
        DISCORD_TOKEN=DISCORD_BOT_TOKEN,
        DISCORD_API_BASE=api,
        IMAGINE_HTTP_PORT="0",
    )
    assert_one_clean_line(
        done,
        2,
        "imagine-bot: configuration error: DISCORD_API_BASE: could not reach Discord "
        "(ClientConnectorError)",
        DISCORD_BOT_TOKEN,
    )


async def test_an_unreachable_gateway_is_logged_while_the_bot_retries(
    fake_discord: FakeDiscord, data_dir: Path, tmp_path: Path
) -> None:
    gateway = f"ws://127.0.0.1:{closed_port()}/gateway"
    log_path = tmp_path / "bot.log"
    env = bot_env(data_dir, **discord_env(fake_discord, DISCORD_GATEWAY_URL=gateway))
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stdout=out, stderr=out
        )
    try:

        def attempts() -> int:
            return log_path.read_text(errors="replace").count("Attempting a reconnect")

        async with asyncio.timeout(60):
            while attempts() < 2:
                assert proc.returncode is None, log_path.read_text(errors="replace")
                await asyncio.sleep(0.2)
        assert proc.returncode is None  # still running, still trying
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = log_path.read_text(errors="replace")
    retry_lines = [line for line in log.splitlines() if "Attempting a reconnect" in line]
    assert "(ClientConnectorError: Cannot connect to host 127.0.0.1" in retry_lines[0]
    assert "Traceback" not in log
    assert DISCORD_BOT_TOKEN not in log
    # First-run noise: the bot uses no voice, so no warning about PyNaCl or davey.
    assert "PyNaCl" not in log and "davey" not in log
    assert fake_discord.identifies == []


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["worker"], "imagine-bot worker delivers Discord and Slack jobs"),
        (["run", "--no-workers"], "imagine-bot run --no-workers takes Discord and Slack commands"),
    ],
)
def test_a_process_with_no_platform_to_serve_stops_cleanly_saying_what_to_set(
    tmp_path: Path, command: list[str], words: str
) -> None:
    # Exit 0: docker compose restarts only failures, so this does not restart in a loop.
    done = run_bot(command, data_dir=tmp_path / "data")
    assert done.returncode == 0
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"imagine-bot: {words}")
    assert "DISCORD_TOKEN" in line and "SLACK_BOT_TOKEN" in line and ".env" in line
    assert not (tmp_path / "data").exists()  # stopped before opening anything


async def test_bolt_does_not_warn_that_an_exported_slack_token_is_unused(
    fake_slack: FakeSlack, data_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "bot.log"
    env = bot_env(data_dir, **slack_env(fake_slack, IMAGINE_LOG_LEVEL="DEBUG"))
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stdout=out, stderr=out
        )
    try:
        async with asyncio.timeout(60):
            while "Slack: signed in" not in log_path.read_text(errors="replace"):
                assert proc.returncode is None, log_path.read_text(errors="replace")
                await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = log_path.read_text(errors="replace")
    assert "will be unused" not in log and "is unused" not in log
    assert "Traceback" not in log
