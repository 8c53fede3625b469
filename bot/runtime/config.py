"""Settings from the environment and ``.env``, validated at start with errors that name the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.domain.errors import ConfigError

if TYPE_CHECKING:
    from bot.domain.policy import PolicyDefaults

KNOWN_PROVIDERS = ("bfl", "fal", "together", "offline")
PROVIDER_KEYS = {"bfl": "BFL_API_KEY", "fal": "FAL_KEY", "together": "TOGETHER_API_KEY"}


class Settings(BaseModel):
    """Every setting of the configuration contract (DESIGN.md), by its environment name."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    database_url: str = Field("", alias="IMAGINE_DATABASE_URL")
    data_dir: Path = Field(Path("data"), alias="IMAGINE_DATA_DIR")
    providers: tuple[str, ...] = Field((), alias="IMAGINE_PROVIDERS")
    http_host: str = Field("127.0.0.1", alias="IMAGINE_HTTP_HOST")
    http_port: int = Field(8080, alias="IMAGINE_HTTP_PORT", ge=0, le=65535)
    public_url: str | None = Field(None, alias="IMAGINE_PUBLIC_URL")
    blob_url: str = Field("", alias="IMAGINE_BLOB_URL")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="IMAGINE_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field("text", alias="IMAGINE_LOG_FORMAT")

    workers: int = Field(64, alias="IMAGINE_WORKERS", ge=1, le=1024)
    lease_seconds: float = Field(60.0, alias="IMAGINE_LEASE_SECONDS", gt=1, le=3600)
    offline_latency: float = Field(0.0, alias="IMAGINE_OFFLINE_LATENCY", ge=0, le=600)
    download_allow: tuple[str, ...] = Field((), alias="IMAGINE_DOWNLOAD_ALLOW")

    bfl_api_key: SecretStr | None = Field(None, alias="BFL_API_KEY")
    bfl_api_base: str = Field("https://api.bfl.ai", alias="BFL_API_BASE")
    fal_key: SecretStr | None = Field(None, alias="FAL_KEY")
    fal_queue_base: str = Field("https://queue.fal.run", alias="FAL_QUEUE_BASE")
    # fal's REST API: doctor's key check starts an upload there to see an account lock.
    fal_rest_base: str = Field("https://rest.fal.ai", alias="FAL_REST_BASE")
    # Where fal publishes the keys its webhooks are signed with (tests point it at a fake).
    fal_jwks_url: str = Field(
        "https://rest.alpha.fal.ai/.well-known/jwks.json", alias="FAL_JWKS_URL"
    )
    together_api_key: SecretStr | None = Field(None, alias="TOGETHER_API_KEY")
    together_api_base: str = Field("https://api.together.ai/v1", alias="TOGETHER_API_BASE")

    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    discord_api_base: str = Field("https://discord.com/api/v10", alias="DISCORD_API_BASE")
    discord_gateway_url: str | None = Field(None, alias="DISCORD_GATEWAY_URL")
    # Large bots: DISCORD_SHARD_COUNT alone starts that many shards in this process;
    # with DISCORD_SHARD_IDS (e.g. "0,1") this process runs only those of the count.
    discord_shard_count: int | None = Field(None, alias="DISCORD_SHARD_COUNT", ge=1, le=10000)
    discord_shard_ids: tuple[int, ...] = Field((), alias="DISCORD_SHARD_IDS")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # Where Slack-hosted input images (url_private) live; only there does the bot send its token.
    slack_files_url: str = Field("https://files.slack.com/", alias="SLACK_FILES_URL")
    # Slack installs through OAuth in many workspaces (docs/slack.md) with SLACK_CLIENT_ID and
    # SLACK_CLIENT_SECRET (below) and the signing secret: the bot scopes asked for on install,
    # comma-separated (default: slack-manifest.yml's).
    slack_scopes: tuple[str, ...] = Field((), alias="SLACK_SCOPES")

    # The moderators' dashboard (docs/dashboard.md): served when the secret key and at least one
    # sign-in (Discord or Slack OAuth client) are set.
    secret_key: SecretStr | None = Field(None, alias="IMAGINE_SECRET_KEY")
    discord_client_id: str | None = Field(None, alias="DISCORD_CLIENT_ID")
    discord_client_secret: SecretStr | None = Field(None, alias="DISCORD_CLIENT_SECRET")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET")
    # Users who see the bot-owner page, as platform:user_id (discord:123, slack:U123).
    owners: tuple[str, ...] = Field((), alias="IMAGINE_OWNERS")

    # Policy defaults; each community may change its own (see docs/settings.md).
    user_rate: str = Field("5/minute", alias="IMAGINE_USER_RATE")
    user_burst: int | None = Field(None, alias="IMAGINE_USER_BURST", ge=1, le=1_000_000)
    user_daily: int | None = Field(100, alias="IMAGINE_USER_DAILY", ge=0, le=1_000_000)
    user_max_in_flight: int | None = Field(
        5, alias="IMAGINE_USER_MAX_IN_FLIGHT", ge=1, le=1_000_000
    )
    community_daily: int | None = Field(None, alias="IMAGINE_COMMUNITY_DAILY", ge=0, le=10_000_000)
    community_budget_usd: float | None = Field(
        None, alias="IMAGINE_COMMUNITY_BUDGET_USD", ge=0, le=1_000_000
    )
    blocked_terms: tuple[str, ...] = Field((), alias="IMAGINE_BLOCKED_TERMS")
    safety_level: str = Field("standard", alias="IMAGINE_SAFETY_LEVEL")
    # /imagine outside servers that installed the bot (DMs, user installs): on or off, and its
    # bot-wide daily spend cap in US dollars (unset: none).
    personal: bool = Field(True, alias="IMAGINE_PERSONAL")
    personal_daily_budget_usd: float | None = Field(
        None, alias="IMAGINE_PERSONAL_DAILY_BUDGET_USD", ge=0, le=1_000_000
    )

    # A test-only hook: the process kills itself with SIGKILL at the named job step. Inert when unset.
    crash_at: str | None = Field(None, alias="IMAGINE_TEST_CRASH_AT")

    @field_validator("user_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from bot.domain.limits import parse_rate

        parse_rate(value)
        return value.strip()

    @field_validator(
        "user_burst",
        "user_daily",
        "user_max_in_flight",
        "community_daily",
        "community_budget_usd",
        "personal_daily_budget_usd",
        mode="before",
    )
    @classmethod
    def _off_is_unlimited(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("off", "none", "unlimited"):
            return None
        return value

    @field_validator("safety_level")
    @classmethod
    def _safety_level(cls, value: str) -> str:
        from bot.domain.errors import InvalidRequest
        from bot.domain.safety import parse_level

        try:
            return parse_level(value).name
        except InvalidRequest as exc:
            raise ValueError(exc.user_message) from None

    @field_validator("blocked_terms", mode="before")
    @classmethod
    def _split_terms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(" ".join(part.split()) for part in value.split(",") if part.strip())
        return value

    @field_validator("providers", "download_allow", "owners", "slack_scopes", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_ints(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError("must be shard numbers separated by commas, e.g. 0,1") from None
        return value

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in KNOWN_PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown provider {unknown[0]!r}; allowed: {', '.join(KNOWN_PROVIDERS)}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("blob_url")
    @classmethod
    def _blob_scheme(cls, value: str) -> str:
        if value and not value.startswith(("file://", "s3://")):
            raise ValueError("must start with file:// or s3://")
        return value

    @field_validator(
        "bfl_api_base",
        "fal_queue_base",
        "fal_jwks_url",
        "together_api_base",
        "discord_api_base",
        "slack_api_url",
        "slack_files_url",
        "public_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    # Derived values -------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'imagine.db'}"

    @property
    def effective_blob_url(self) -> str:
        return self.blob_url or f"file://{self.data_dir / 'images'}"

    @property
    def effective_providers(self) -> tuple[str, ...]:
        if self.providers:
            return self.providers
        keyed = tuple(name for name, var in PROVIDER_KEYS.items() if self.secret(var))
        return keyed or ("offline",)

    def policy_defaults(self) -> PolicyDefaults:
        """The limits, word list and safety level every community starts from."""
        from bot.domain.limits import LimitDefaults, parse_rate
        from bot.domain.models import Limits
        from bot.domain.policy import PolicyDefaults

        rate = parse_rate(self.user_rate)
        return PolicyDefaults(
            limits=LimitDefaults(
                user=Limits(
                    rate=rate[0] if rate else None,
                    period=rate[1] if rate else None,
                    burst=self.user_burst,
                    daily=self.user_daily,
                    max_in_flight=self.user_max_in_flight,
                ),
                community_daily=self.community_daily,
                community_budget_usd=self.community_budget_usd,
            ),
            blocked_terms=self.blocked_terms,
            safety_level=self.safety_level,
            personal_enabled=self.personal,
            personal_budget_usd=self.personal_daily_budget_usd,
        )

    @property
    def slack_oauth(self) -> bool:
        """Slack installs through OAuth, each workspace with its own token from the database
        (the client alone, without the signing secret, serves only the dashboard's sign-in)."""
        return bool(self.slack_client_id and self.slack_client_secret and self.slack_signing_secret)

    @property
    def discord_sign_in(self) -> bool:
        return bool(self.discord_client_id and self.discord_client_secret)

    @property
    def slack_sign_in(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def dashboard_enabled(self) -> bool:
        return self.secret_key is not None and (self.discord_sign_in or self.slack_sign_in)

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None or self.slack_oauth

    def secret(self, variable: str) -> str | None:
        """The value of a secret setting by its environment name, or None."""
        for name, info in type(self).model_fields.items():
            if info.alias == variable:
                value = getattr(self, name)
                if isinstance(value, SecretStr):
                    return value.get_secret_value() or None
                return None
        raise KeyError(variable)

    def secret_values(self) -> list[str]:
        """Every secret in use, for log redaction."""
        out: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


def _alias_of(field_name: str) -> str:
    info = Settings.model_fields.get(field_name)
    return info.alias if info and info.alias else field_name


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> Settings:
    """Read settings from ``environ`` (default: the process environment) over ``env_file``.

    Raises ConfigError naming the first wrong variable and what it allows.
    """
    values: dict[str, Any] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    # An empty variable means "not set", as in most shells' .env habits.
    values = {k: v for k, v in values.items() if v != ""}
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = _alias_of(str(error["loc"][0])) if error["loc"] else "configuration"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(variable, message) from None
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    for name in settings.providers:
        variable = PROVIDER_KEYS.get(name)
        if variable and not settings.secret(variable):
            raise ConfigError("IMAGINE_PROVIDERS", f"names {name!r} but {variable} is not set")
    if settings.discord_shard_ids:
        count = settings.discord_shard_count
        if count is None:
            raise ConfigError("DISCORD_SHARD_COUNT", "required with DISCORD_SHARD_IDS")
        if any(not 0 <= shard < count for shard in settings.discord_shard_ids):
            raise ConfigError("DISCORD_SHARD_IDS", f"each shard must be from 0 to {count - 1}")
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    if key is not None and len(key) < 16:
        raise ConfigError("IMAGINE_SECRET_KEY", f"at least 16 characters, not {len(key)}")
    if settings.slack_oauth and key is None:
        raise ConfigError(
            "IMAGINE_SECRET_KEY",
            "required with SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET: it "
            "encrypts the workspaces' tokens in the database",
        )
    for owner in settings.owners:
        if owner.partition(":")[0] not in ("discord", "slack") or not owner.partition(":")[2]:
            raise ConfigError(
                "IMAGINE_OWNERS", f"{owner!r}: write each owner as discord:<id> or slack:<id>"
            )
    if settings.slack_bot_token and not (settings.slack_signing_secret or settings.slack_app_token):
        raise ConfigError(
            "SLACK_SIGNING_SECRET",
            "required with SLACK_BOT_TOKEN (or set SLACK_APP_TOKEN for Socket Mode)",
        )
