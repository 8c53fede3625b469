"""The S3 blob store against moto's server on 127.0.0.1: storage, clear errors, the whole flow."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from adapters.console import ConsoleAdapter
from bot.blobs import open_blobs
from bot.blobs.s3 import S3BlobStore
from bot.domain.errors import ConfigError, StoreError
from bot.ops.doctor import doctor
from bot.runtime.app import open_app
from bot.runtime.config import load_settings

SECRET = "s3-secret-never-shown-7f3a"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> str:
    """Credentials and endpoint as an operator sets them; no developer files, no metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTSTORAGE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("S3_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3(aws_env: str) -> Any:
    return boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"imagine-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _png(width: int = 32, height: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


async def test_put_get_delete_under_the_prefix(s3: Any, bucket: str) -> None:
    data = _png()
    async with open_blobs(f"s3://{bucket}/images") as blobs:
        assert isinstance(blobs, S3BlobStore)
        await blobs.put("job1/1.png", data, "image/png")
        assert await blobs.get("job1/1.png") == data
        assert blobs.local_path("job1/1.png") is None

        stored = s3.get_object(Bucket=bucket, Key="images/job1/1.png")
        assert stored["Body"].read() == data
        assert stored["ContentType"] == "image/png"

        await blobs.delete("job1/1.png")
        listed = s3.list_objects_v2(Bucket=bucket)
        assert listed.get("KeyCount", 0) == 0
        with pytest.raises(FileNotFoundError):
            await blobs.get("job1/1.png")


async def test_bucket_without_prefix_and_bad_keys(s3: Any, bucket: str) -> None:
    async with open_blobs(f"s3://{bucket}") as blobs:
        await blobs.put("a.png", b"x", "image/png")
        assert s3.get_object(Bucket=bucket, Key="a.png")["Body"].read() == b"x"
        with pytest.raises(ValueError):
            await blobs.put("../escape.png", b"x", "image/png")


async def test_missing_bucket_names_the_variable(aws_env: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await S3BlobStore.open("s3://no-such-bucket-here/images")
    assert caught.value.variable == "IMAGINE_BLOB_URL"
    assert "no-such-bucket-here" in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_invalid_bucket_name_is_a_config_error(aws_env: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await S3BlobStore.open("s3://Bad_Bucket!/x")
    assert caught.value.variable == "IMAGINE_BLOB_URL"


async def test_unreachable_endpoint_names_the_variable(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://user:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError) as caught:
        await S3BlobStore.open("s3://some-bucket/images")
    message = str(caught.value)
    assert "S3_ENDPOINT_URL" in message
    assert f"127.0.0.1:{port}" in message
    assert SECRET not in message


async def test_missing_credentials_name_the_variable(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError) as caught:
        await S3BlobStore.open(f"s3://{bucket}/images")
    assert caught.value.variable == "AWS_ACCESS_KEY_ID"


async def test_console_job_lands_in_the_bucket_and_a_copy_on_disk(
    s3: Any, bucket: str, data_dir: Path
) -> None:
    settings = load_settings(
        {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_BLOB_URL": f"s3://{bucket}/imgs"},
        env_file=None,
    )
    lines: list[str] = []
    async with open_app(settings) as app:
        console = ConsoleAdapter(app, write=lines.append)
        console.attach()
        await app.start_workers()
        await console.handle("a lighthouse in a storm --ar 16:9")
        await console.drain()

    done = [line for line in lines if " done -> " in line]
    assert len(done) == 1, lines
    path = Path(done[0].split(" done -> ")[1].split(" (")[0])
    assert path.parent == data_dir / "console"
    job_id = done[0].split()[1].rstrip(":")

    # JPEG: the bot's default format.
    stored = s3.get_object(Bucket=bucket, Key=f"imgs/{job_id}/1.jpg")
    body = stored["Body"].read()
    assert path.read_bytes() == body
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG"
        assert abs(image.width / image.height - 16 / 9) < 0.02
    # Nothing was written to the local image folder: the bucket is the store.
    assert not (data_dir / "images").exists()


async def test_doctor_checks_the_bucket(
    bucket: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_BLOB_URL": f"s3://{bucket}/imgs"},
        env_file=None,
    )
    assert await doctor(settings) == 0
    out = capsys.readouterr().out
    assert f"ok    images: writable (s3://{bucket}/imgs)" in out


async def test_doctor_reports_a_missing_bucket(
    aws_env: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_BLOB_URL": "s3://gone-bucket-xyz/imgs"},
        env_file=None,
    )
    assert await doctor(settings) == 1
    out = capsys.readouterr().out
    assert "FAIL  images: IMAGINE_BLOB_URL: bucket 'gone-bucket-xyz' does not exist" in out
    assert SECRET not in out


async def test_settings_from_dot_env_reach_the_client(
    aws_env: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An operator who writes the AWS variables into .env (as .env.example shows) gets a working
    bucket, though load_settings never exports .env into the process environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("S3_ENDPOINT_URL")
    (tmp_path / ".env").write_text(
        f"IMAGINE_BLOB_URL=s3://{bucket}/imgs\n"
        "AWS_ACCESS_KEY_ID=AKIDFROMDOTENV\n"
        f"AWS_SECRET_ACCESS_KEY={SECRET}\n"
        "AWS_REGION=us-east-1\n"
        f"S3_ENDPOINT_URL={aws_env}\n"
        "AWS_SESSION_TOKEN=\n"
    )
    settings = load_settings()
    async with open_blobs(settings.effective_blob_url) as blobs:
        await blobs.put("from-dotenv.txt", b"hello", "text/plain")
        assert await blobs.get("from-dotenv.txt") == b"hello"
