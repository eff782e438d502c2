"""A real probe of an RTSP URL for `POST /api/v1/devices/validate`: open, read, close."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from jobs.node.protocol import Probed, ProbeFailed, source_failure
from media.errors import SourceError
from media.rtsp_source import RtspSettings, Transport, open_source


def probe_rtsp(
    url: str, transport: str, open_timeout: float, read_timeout: float,
    resolve: Callable[[str], str] | None = None,
) -> Probed | ProbeFailed:
    """Open the camera as ingest would (through the same URL guard, `resolve`); describe
    its video or say why it failed."""
    mode: Transport = "udp" if transport == "udp" else "tcp"
    settings = RtspSettings(transport=mode, open_timeout=open_timeout, read_timeout=read_timeout)
    try:
        opened = open_source(resolve(url) if resolve is not None else url, settings)
    except SourceError as exc:
        error = source_failure(exc)
        return ProbeFailed(error_code=error.error_code, error=error.message, detail=error.detail)
    try:
        info = opened.info
        sets = opened.info.parameter_sets
        fingerprint = zlib.crc32(b"".join([*sets.sps, *sets.pps]) or info.extradata)
        return Probed(
            # RTP SSRCs belong to one RTSP session and the demuxer does not expose them; this
            # is a stable fingerprint of the camera's H.264 parameter sets instead.
            ssrc=fingerprint or 1,
            codec=info.codec,
            width=info.width,
            height=info.height,
            fps=info.fps,
            profile=info.profile_level_id,
            open_seconds=round(opened.open_seconds, 3),
        )
    finally:
        opened.container.close()
