from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.errors import ConfigError
from bot.runtime.config import load_settings


def test_defaults_run_offline_on_sqlite_under_the_data_dir() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.effective_providers == ("offline",)
    assert settings.effective_database_url == "sqlite:///data/imagine.db"
    assert settings.effective_blob_url == "file://data/images"
    assert not settings.discord_enabled and not settings.slack_enabled


def test_providers_default_to_those_with_keys() -> None:
    settings = load_settings({"FAL_KEY": "k1", "BFL_API_KEY": "k2"}, env_file=None)
    assert settings.effective_providers == ("bfl", "fal")


@pytest.mark.parametrize(
    ("environ", "variable", "words"),
    [
        ({"IMAGINE_PROVIDERS": "bfl,acme"}, "IMAGINE_PROVIDERS", "acme"),
        ({"IMAGINE_PROVIDERS": "bfl"}, "IMAGINE_PROVIDERS", "BFL_API_KEY"),
        ({"IMAGINE_HTTP_PORT": "eighty"}, "IMAGINE_HTTP_PORT", "integer"),
        ({"IMAGINE_HTTP_PORT": "70000"}, "IMAGINE_HTTP_PORT", "65535"),
        ({"IMAGINE_DATABASE_URL": "mysql://x"}, "IMAGINE_DATABASE_URL", "postgresql://"),
        ({"IMAGINE_BLOB_URL": "ftp://x"}, "IMAGINE_BLOB_URL", "s3://"),
        ({"IMAGINE_LOG_LEVEL": "LOUD"}, "IMAGINE_LOG_LEVEL", "DEBUG"),
        ({"BFL_API_BASE": "api.bfl.ai"}, "BFL_API_BASE", "http"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET", "required"),
    ],
)
def test_a_wrong_value_names_its_variable(
    environ: dict[str, str], variable: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, env_file=None)
    assert caught.value.variable == variable
    assert words in str(caught.value)


def test_secrets_never_appear_in_errors_or_repr() -> None:
    settings = load_settings({"BFL_API_KEY": "sk-very-secret-123"}, env_file=None)
    assert "sk-very-secret-123" not in repr(settings)
    assert settings.secret("BFL_API_KEY") == "sk-very-secret-123"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"BFL_API_KEY": "sk-very-secret-123", "IMAGINE_PROVIDERS": "x"}, env_file=None
        )
    assert "sk-very-secret-123" not in str(caught.value)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("IMAGINE_WORKERS=7\nIMAGINE_HTTP_PORT=9000\n")
    settings = load_settings({"IMAGINE_HTTP_PORT": "9100"}, env_file=env_file)
    assert settings.workers == 7
    assert settings.http_port == 9100


def test_the_dashboard_needs_the_secret_key_and_a_sign_in_client() -> None:
    client = {"DISCORD_CLIENT_ID": "1", "DISCORD_CLIENT_SECRET": "s"}
    assert not load_settings(client, env_file=None).dashboard_enabled
    key = {"IMAGINE_SECRET_KEY": "k" * 16}
    assert not load_settings(key, env_file=None).dashboard_enabled
    assert load_settings({**client, **key}, env_file=None).dashboard_enabled


def test_owners_and_the_secret_keys_length_are_checked() -> None:
    settings = load_settings({"IMAGINE_OWNERS": "discord:1, slack:U2"}, env_file=None)
    assert settings.owners == ("discord:1", "slack:U2")
    with pytest.raises(ConfigError) as wrong:
        load_settings({"IMAGINE_OWNERS": "12345"}, env_file=None)
    assert "IMAGINE_OWNERS" in str(wrong.value)
    with pytest.raises(ConfigError) as short:
        load_settings({"IMAGINE_SECRET_KEY": "short"}, env_file=None)
    assert "IMAGINE_SECRET_KEY: at least 16 characters, not 5" in str(short.value)
    assert "short" not in str(short.value).replace("IMAGINE", "")
