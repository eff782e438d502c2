"""Fault drill, short version: PostgreSQL restarts under a LIVE stream that a viewer watches
(a PostgreSQL the test starts itself, tests/postgres_server.py). While it is gone the API
answers 503 in each family's shape, the stream keeps streaming to its viewer and recording
to disk; once it is back everything heals by itself: every segment recorded meanwhile is
indexed once (no row lost or duplicated), a bookmark and a snapshot asked for just before
the outage complete, and new requests work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.tables import HlsSegment
from tests.conftest import bearer
from tests.drill_viewers import in_process_client, live_stream, watching
from tests.postgres_server import PostgresServer
from tests.vas_fixtures import until

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def settings_env(settings_env: dict[str, str], pg_server: PostgresServer) -> dict[str, str]:
    return {**settings_env, "DATABASE_URL": pg_server.url, "VAS_JOB_STALE_MS": "4000"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # the PostgreSQL is the test's own
async def test_postgres_restart_under_a_live_stream(
    client: httpx.AsyncClient, admin_token: str, media_node: Any, worker: Any,
    start_camera: Any, pg_server: PostgresServer, settings: Any,
) -> None:
    headers = bearer(admin_token)
    _, stream_id = await live_stream(client, start_camera)
    stream = f"/v2/streams/{stream_id}"
    directory = settings.media.recordings_dir(settings.server.data_dir) / stream_id

    async def indexed() -> list[int]:
        rows = await HlsSegment.select(HlsSegment.sequence).where(
            HlsSegment.stream_id == uuid.UUID(stream_id))
        return [r["sequence"] for r in rows]

    await until(indexed, "first segment", 30)
    viewers = await watching(in_process_client(client, admin_token), stream_id, ("guide",))
    try:
        bookmark = await client.post(f"{stream}/bookmarks", headers=headers, json={
            "source": "live", "before_seconds": 2, "after_seconds": 8})
        assert bookmark.status_code == 201, bookmark.text
        snapshot = await client.post(f"{stream}/snapshots", headers=headers,
                                     json={"source": "live"})
        assert snapshot.status_code == 201, snapshot.text

        pg_server.stop()
        down_at = time.monotonic()
        files_before = len(list(directory.glob("seg_*.ts")))
        gone = await client.get(stream, headers=headers)
        assert gone.status_code == 503, gone.text
        assert gone.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"
        assert gone.headers["retry-after"]
        devices = await client.get("/api/v1/devices")
        assert devices.status_code == 503 and isinstance(devices.json()["detail"], str)
        refused = await client.post(f"{stream}/snapshots", headers=headers,
                                    json={"source": "live"})
        assert refused.status_code == 503, refused.text

        async def recording() -> bool:  # closed segments written while the database is away
            return len(list(directory.glob("seg_*.ts"))) >= files_before + 2

        await until(recording, "recording while PostgreSQL is down", 30)
        await viewers[0].frame_after(time.monotonic(), 5)  # still streaming to its viewer
        outage = time.monotonic() - down_at
        pg_server.start()

        async def healed() -> bool:
            return (await client.get(stream, headers=headers)).status_code == 200

        await until(healed, "the API after PostgreSQL returned", 30)
        assert (await client.get(stream, headers=headers)).json()["state"] == "LIVE"

        async def ready(path: str) -> bool:
            body = (await client.get(path, headers=headers)).json()
            assert body["status"] != "failed", (path, body.get("error"), body.get("attempts"))
            return bool(body["status"] == "ready")

        await until(lambda: ready(f"/v2/bookmarks/{bookmark.json()['id']}"), "the bookmark", 90)
        await until(lambda: ready(f"/v2/snapshots/{snapshot.json()['id']}"), "the snapshot", 30)
        again = await client.post(f"{stream}/snapshots", headers=headers, json={"source": "live"})
        assert again.status_code == 201, again.text
        await until(lambda: ready(f"/v2/snapshots/{again.json()['id']}"), "a new snapshot", 30)
        await viewers[0].frame_after(time.monotonic(), 5)
    finally:
        for viewer in viewers:
            await viewer.stop()

    # Every segment closed on disk has exactly one row; only the open one may lack it.
    sequences = await indexed()
    assert len(sequences) == len(set(sequences)), "a segment indexed twice"
    on_disk = sorted(int(p.stem.split("_")[1]) for p in directory.glob("seg_*.ts"))
    missing = set(on_disk) - set(sequences) - {max(on_disk)}
    assert missing == set(), f"segments recorded during the outage but not indexed: {missing}"
    print(f"PostgreSQL down {outage:.1f} s; {len(on_disk) - files_before} segments recorded "
          "meanwhile, all indexed once; bookmark and snapshots completed")
    assert media_node.proc.poll() is None and worker.proc.poll() is None
