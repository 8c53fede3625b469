"""docker-compose.yml: PostgreSQL, one bot and two workers that all point at that database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.runtime.cli import _parser
from bot.runtime.config import load_settings

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    text = COMPOSE.read_text()
    # Compose's own defaults, as `docker compose config` would fill them in with no .env.
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), text)
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_one_bot_without_workers_and_two_workers() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "bot", "worker"}
    assert services["bot"]["command"] == ["imagine-bot", "run", "--no-workers"]
    assert services["worker"]["command"] == ["imagine-bot", "worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("bot", "worker"):
        args = _parser().parse_args(services[name]["command"][1:])
        assert args.command in ("run", "worker")


def test_bot_and_workers_use_the_postgres_service_and_one_images_volume() -> None:
    services = _compose()["services"]
    db = services["postgres"]["environment"]
    for name in ("bot", "worker"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        settings = load_settings(env, env_file=None)
        url = urlsplit(settings.database_url)
        assert url.scheme == "postgresql" and url.hostname == "postgres"
        assert (url.username, url.password) == (db["POSTGRES_USER"], db["POSTGRES_PASSWORD"])
        assert url.path == f"/{db['POSTGRES_DB']}"
        assert settings.effective_blob_url == "file:///data/images"
        assert services[name]["volumes"] == ["images:/data"]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_http_port_is_published_on_loopback_only() -> None:
    services = _compose()["services"]
    assert services["bot"]["ports"] == ["127.0.0.1:8080:8080"]
    assert all("ports" not in services[name] for name in ("worker", "postgres"))


def test_failures_restart_but_a_clean_stop_stays_stopped() -> None:
    # With no platform token, bot and workers exit 0 saying what to set (see
    # tests/e2e/test_startup_errors.py): on-failure does not restart them in a loop.
    services = _compose()["services"]
    for name in ("bot", "worker"):
        assert services[name]["restart"] == "on-failure"
        assert "deploy" not in services[name] or "restart_policy" not in services[name]["deploy"]
