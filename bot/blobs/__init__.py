"""Where images are kept: a local folder by default, or an S3-compatible bucket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.blobs.local import LocalBlobStore
from bot.domain.errors import ConfigError
from bot.ports import BlobStore


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
            from bot.blobs.s3 import S3BlobStore  # type: ignore[import-not-found,unused-ignore]
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
