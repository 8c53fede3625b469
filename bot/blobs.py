"""Where images are kept: a local folder by default (an S3-compatible bucket is another backend)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from bot.errors import ConfigError

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """The file behind a key where the store is a local folder, else None."""

    async def aclose(self) -> None: ...


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """Files under one folder; writes go to a temporary name first, so a crash leaves no half file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, check_key(key), data)

    def _put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread((self.root / check_key(key)).read_bytes)

    async def delete(self, key: str) -> None:
        path = self.root / check_key(key)
        await asyncio.to_thread(path.unlink, True)

    def local_path(self, key: str) -> Path | None:
        return self.root / check_key(key)

    async def aclose(self) -> None:
        return None


@asynccontextmanager
async def open_blobs(url: str) -> AsyncIterator[BlobStore]:
    """Open the blob store named by ``IMAGINE_BLOB_URL``: ``file://folder`` or ``s3://bucket/prefix``."""
    store: BlobStore
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        store = LocalBlobStore(root)
    elif url.startswith("s3://"):
        try:
            from bot.s3 import S3BlobStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError(
                "IMAGINE_BLOB_URL", "s3:// needs the s3 extra: pip install 'imagine-bot[s3]'"
            ) from exc
        store = await S3BlobStore.open(url)
    else:
        raise ConfigError("IMAGINE_BLOB_URL", "must start with file:// or s3://")
    try:
        yield store
    finally:
        await store.aclose()
