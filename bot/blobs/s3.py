"""Images in an S3-compatible bucket (``IMAGINE_BLOB_URL=s3://bucket/prefix``), through aioboto3.

Endpoint, region and credentials come from the usual ``AWS_*`` variables (botocore's own chain) and
``S3_ENDPOINT_URL`` for S3-compatible services (MinIO, R2, a local test server).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from dotenv import dotenv_values

from bot.blobs.keys import check_key
from bot.domain.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# Bucket names as S3 accepts them (lowercase letters, digits, dots, hyphens; 3 to 63 characters).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"404", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, "some/prefix"). Raises ConfigError."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket:
        raise ConfigError("IMAGINE_BLOB_URL", "an S3 location looks like s3://bucket/prefix")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigError("IMAGINE_BLOB_URL", f"{bucket!r} is not a valid S3 bucket name")
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
    return bucket, prefix


# Passed to the session explicitly, so values from .env work as well as exported ones.
_SESSION_VARIABLES = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "region_name",
    "AWS_PROFILE": "profile_name",
}


def aws_environment(env_file: str | Path = ".env") -> dict[str, str]:
    """``AWS_*`` and ``S3_ENDPOINT_URL`` from the environment over ``.env``, as settings are read
    (``load_settings`` does not export ``.env`` into the process environment)."""
    values: dict[str, str] = {}
    if Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ)
    return {
        k: v for k, v in values.items() if v != "" and (k.startswith("AWS_") or k.startswith("S3_"))
    }


def _session_options(env: Mapping[str, str]) -> dict[str, str]:
    options = {arg: env[var] for var, arg in _SESSION_VARIABLES.items() if env.get(var)}
    if "region_name" not in options and env.get("AWS_DEFAULT_REGION"):
        options["region_name"] = env["AWS_DEFAULT_REGION"]
    if "aws_access_key_id" in options:
        options.pop("profile_name", None)  # explicit keys win over a profile
    return options


def _endpoint_for_messages(endpoint: str | None) -> str:
    """The endpoint without any user:password part, fit for an error message."""
    if not endpoint:
        return "the AWS endpoint of the configured region"
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _error_code(exc: ClientError) -> str:
    error: Any = exc.response.get("Error", {})
    return str(error.get("Code", ""))


class S3BlobStore:
    """One aioboto3 client, opened once by ``open`` and closed by ``aclose``."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, stack: AsyncExitStack) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._stack = stack

    @classmethod
    async def open(cls, url: str, environ: Mapping[str, str] | None = None) -> S3BlobStore:
        """Open the client and check the bucket is there and ours; errors name the variable."""
        bucket, prefix = parse_s3_url(url)
        env = aws_environment() if environ is None else environ
        endpoint = env.get("S3_ENDPOINT_URL") or None
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ConfigError("S3_ENDPOINT_URL", "must be an http:// or https:// URL")
        config = Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard"},
            # S3-compatible services (MinIO, a local server) mostly want path-style addresses.
            s3={"addressing_style": "path"} if endpoint else None,
        )
        try:
            session = aioboto3.Session(**_session_options(env))
        except BotoCoreError as exc:  # e.g. a profile that does not exist
            raise ConfigError("AWS_PROFILE", f"{type(exc).__name__}: {exc}") from None
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                session.client("s3", endpoint_url=endpoint, config=config)
            )
        except ValueError:
            await stack.aclose()
            raise ConfigError("S3_ENDPOINT_URL", "is not a valid endpoint URL") from None
        except BotoCoreError as exc:
            await stack.aclose()
            raise ConfigError("AWS_REGION", f"S3 client could not start: {exc}") from None
        store = cls(client, bucket, prefix, stack)
        try:
            await store._check_bucket(endpoint)
        except BaseException:
            await stack.aclose()
            raise
        return store

    async def _check_bucket(self, endpoint: str | None) -> None:
        where = _endpoint_for_messages(endpoint)
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(
                "AWS_ACCESS_KEY_ID",
                "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)",
            ) from None
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING:
                raise ConfigError(
                    "IMAGINE_BLOB_URL", f"bucket {self.bucket!r} does not exist at {where}"
                ) from None
            if code in _DENIED:
                raise ConfigError(
                    "AWS_ACCESS_KEY_ID",
                    f"access to bucket {self.bucket!r} at {where} was denied; check "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy",
                ) from None
            if code in ("301", "PermanentRedirect", "400"):
                raise ConfigError(
                    "AWS_REGION",
                    f"bucket {self.bucket!r} is in another region; set AWS_REGION to it",
                ) from None
            raise StoreError(f"S3 bucket {self.bucket!r} at {where}: error {code}") from None
        except EndpointConnectionError:
            variable = "S3_ENDPOINT_URL" if endpoint else "AWS_REGION"
            raise StoreError(f"S3 endpoint {where} is unreachable (check {variable})") from None
        except BotoCoreError as exc:
            raise StoreError(
                f"S3 endpoint {where} failed: {type(exc).__name__} (check S3_ENDPOINT_URL)"
            ) from None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"storing {key} in S3 failed: {_describe(exc)}") from None

    async def get(self, key: str) -> bytes:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"no image {key} in the bucket") from None
            raise StoreError(f"reading {key} from S3 failed: {_describe(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"reading {key} from S3 failed: {_describe(exc)}") from None
        return data

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"deleting {key} from S3 failed: {_describe(exc)}") from None

    def local_path(self, key: str) -> Path | None:
        return None

    async def aclose(self) -> None:
        await self._stack.aclose()


def _describe(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return f"error {_error_code(exc)}"
    return type(exc).__name__
