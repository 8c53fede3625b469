"""Images in a local folder (``IMAGINE_BLOB_URL=file://folder``), the default."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.blobs.keys import check_key


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
