"""Serving stored files, with single HTTP Range requests (players seek in clips).

Bodies are streamed in bounded chunks, never read whole: a 10-minute clip asked for with
`Range: bytes=0-` costs the API one chunk of memory, not the clip.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Request, Response
from litestar.response import File, Stream

from core.errors import NotFound

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK_BYTES = 64 * 1024


async def _byte_range(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of `path` from `start`, one bounded chunk at a time (reads off the
    event loop). Stops early if the file shrank meanwhile."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(fh.seek, start)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(fh.read, min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(fh.close)


def serve_file(request: Request[Any, Any, Any], path: Path, media_type: str,
               filename: str) -> Response[Any]:
    """The whole file, or the one byte range asked for (206; 416 when unsatisfiable)."""
    if not path.is_file():
        raise NotFound(f"{filename} is not available")
    size = path.stat().st_size
    header = request.headers.get("range")
    match = _RANGE.match(header.strip()) if header else None
    if match is None or (not match[1] and not match[2]):
        return File(path=path, media_type=media_type, filename=filename,
                    content_disposition_type="inline", headers={"Accept-Ranges": "bytes"})
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:  # a suffix range: the last N bytes
        start, end = max(0, size - int(match[2])), size - 1
    if start >= size or start > end:
        return Response({"detail": f"Range not satisfiable (file is {size} bytes)"},
                        status_code=416, headers={"Content-Range": f"bytes */{size}"})
    length = end - start + 1
    return Stream(_byte_range(path, start, length), status_code=206, media_type=media_type,
                  headers={"Content-Range": f"bytes {start}-{end}/{size}",
                           "Content-Length": str(length), "Accept-Ranges": "bytes",
                           "Content-Disposition": f'inline; filename="{filename}"'})
