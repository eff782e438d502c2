"""The camera URL guard where ingest connects: checked before every attempt, pinned to the
checked address (digest auth still works), and a refusal connects to nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import pytest

from core.settings import load_settings
from jobs.camera_guard import camera_resolver
from media.errors import SourceError, SourceRefused
from media.ingest import IngestState, RtspIngest
from media.rtsp_source import RtspSettings
from tests.camera import SilentRtspServer, TestCamera
from tests.media.conftest_media import CAMERA_PROFILE

pytestmark = pytest.mark.asyncio


@pytest.fixture
def digest_camera() -> Iterator[TestCamera]:
    profile = dataclasses.replace(CAMERA_PROFILE, user="admin", password="s3cret-digest")
    with TestCamera(profile) as camera:
        yield camera


async def test_a_named_host_is_opened_at_its_checked_address_with_digest_auth(
    digest_camera: TestCamera, tmp_path: Path
) -> None:
    resolve = camera_resolver(load_settings({"VAS_DATA_DIR": str(tmp_path)}))
    named = digest_camera.url.replace("127.0.0.1", "localhost")
    pinned = resolve(named)
    assert pinned == digest_camera.url  # localhost → 127.0.0.1, credentials kept
    ingest = RtspIngest(named, resolve=resolve)
    await ingest.open()
    try:
        assert ingest.state is IngestState.LIVE
    finally:
        await ingest.stop()


async def test_production_refuses_loopback_before_connecting(tmp_path: Path) -> None:
    settings = load_settings({
        "VAS_DATA_DIR": str(tmp_path), "VAS_ENV": "production", "JWT_SECRET_KEY": "k" * 40,
        "VAS_CREDENTIALS_KEY": "c" * 40, "DATABASE_URL": "postgresql://db/vas",
        "REDIS_URL": "redis://cache:6379/0", "VAS_CAMERA_NETWORKS": "10.20.0.0/16"})
    with SilentRtspServer() as server:
        ingest = RtspIngest(server.url, resolve=camera_resolver(settings), open_timeout=2)
        with pytest.raises(SourceRefused, match="loopback"):
            await ingest.open()
        assert ingest.state is IngestState.ERROR
        assert server.connection_count == 0


async def test_every_reconnect_asks_the_guard_again(tmp_path: Path) -> None:
    """Once the guard refuses (the policy or DNS changed), ingest keeps retrying through it
    and never connects; each attempt is reported as an ERROR with the reason."""
    checks: list[str] = []
    with SilentRtspServer() as server:

        def resolve(url: str) -> str:
            checks.append(url)
            raise SourceRefused("rtsp_url refused: 10.9.9.9 is outside VAS_CAMERA_NETWORKS")

        errors: list[SourceError | None] = []
        ingest = RtspIngest(server.url, resolve=resolve, backoff_initial=0.1, backoff_max=0.2,
                            on_state=lambda s, m: errors.append(m) if s is IngestState.ERROR
                            else None)
        ingest.start()
        try:
            async with asyncio.timeout(10):
                while len(checks) < 3:
                    await asyncio.sleep(0.05)
        finally:
            await ingest.stop()
        assert server.connection_count == 0
    assert all(url == server.url for url in checks)
    assert errors and all(isinstance(m, SourceRefused) and "outside VAS_CAMERA_NETWORKS" in str(m)
                          for m in errors)


async def test_ffmpeg_opens_nothing_but_rtsp(tmp_path: Path) -> None:
    """The protocol whitelist: a URL that reached FFmpeg anyway could not read a file, a
    playlist or HTTP: FFmpeg refuses the protocol (EINVAL) before reading anything."""
    playlist = tmp_path / "list.m3u8"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")
    options = RtspSettings(open_timeout=1, read_timeout=1).av_options()
    for url in ("file:///etc/passwd", str(playlist), "http://127.0.0.1:9/x",
                "concat:/etc/passwd|/etc/hosts", "pipe:0"):
        with pytest.raises(av.error.ArgumentError):
            av.open(url, options=options, timeout=(1, 1))
    # The control: without the whitelist FFmpeg does open the file.
    with av.open("/etc/hostname" if Path("/etc/hostname").exists() else "/etc/hosts",
                 options={"probesize": "32"}, format="data"):
        pass
