"""Graceful scale-in and stable node identity, with media nodes as real processes.

SIGTERM (as Kubernetes sends it) makes a node hand its streams over: the other node runs them
at once, the viewers' transports close so clients re-attach, one ingest per camera. A node
restarted with the same VAS_NODE_ID (a StatefulSet pod) takes its place: one registry row,
its old streams running again under a fresh lease, before that lease would have expired.
(The hand-over time is a figure of docs/scale-out.md, measured by benchmarks/scale_drill.py.)
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from core.clock import utcnow
from core.tables import MediaNode, Stream
from tests.conftest import bearer
from tests.vas_fixtures import add_device, rtsp_connections, until
from vas_client import StreamConsumer, VasClient

pytestmark = pytest.mark.slow


async def _start(client, camera) -> str:
    device_id = await add_device(client, camera.url)
    answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["v2_stream_id"])


async def _row(stream_id: str) -> dict:
    return await Stream.select(Stream.node_id, Stream.state, Stream.lease_expires_at).where(
        Stream.id == stream_id).first()


def _vas(client, token: str) -> VasClient:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client  # the in-process app, on the nodes' database and Redis
    vas._access, vas._expires_at = token, time.monotonic() + 600
    return vas


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_sigterm_hands_streams_over_and_closes_viewer_transports(
        client, admin_token, start_process, start_camera, settings_env):
    settings_env["VAS_NODE_LEASE_MS"] = "60000"  # only the hand-over can move it in time
    nodes = [start_process("media-node", "registered") for _ in range(2)]
    camera = start_camera(width=320, height=240, fps=10, gop=10)
    stream_id = await _start(client, camera)
    owner = (await _row(stream_id))["node_id"]
    victim = next(n for n in nodes if str(n.proc.pid) in owner)
    survivor = next(n for n in nodes if n is not victim)
    headers = bearer(admin_token)
    vas = _vas(client, admin_token)

    viewer = StreamConsumer(vas, stream_id, local_ip="127.0.0.1")
    await viewer.start()
    assert [f async for f in viewer.frames(limit=3)]
    victim.proc.send_signal(signal.SIGTERM)
    # The node's transport closed: the client's track ends, no more frames come.
    ended = asyncio.ensure_future(_drain(viewer))
    await asyncio.wait_for(ended, 30)
    assert await asyncio.to_thread(victim.proc.wait, 30) == 0, victim.output
    await viewer.close()
    assert "released" in victim.output and "handed 1 streams over" in victim.output

    async def moved() -> bool:
        row = await _row(stream_id)
        return row["state"] == "LIVE" and str(survivor.proc.pid) in (row["node_id"] or "")
    await until(moved, "stream LIVE on the other node", 30)  # far below the 60 s lease
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
    mine = next(c for c in listed["consumers"] if c["id"] == viewer.consumer_id)
    assert mine["state"] == "CLOSED", mine
    assert rtsp_connections(camera.port) == 1
    assert [r["node_id"] for r in await MediaNode.select(MediaNode.node_id)] == [
        (await _row(stream_id))["node_id"]]

    # The guide's client re-attaches and gets video from the new owner.
    async with StreamConsumer(vas, stream_id, local_ip="127.0.0.1") as again:
        frames = [f async for f in again.frames(limit=5)]
    assert frames and frames[0].image.shape == (240, 320, 3)


async def _drain(viewer: StreamConsumer) -> None:
    async for _ in viewer.frames():
        pass


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_node_restarted_with_the_same_id_takes_its_place(
        client, start_process, start_camera, settings_env):
    settings_env["VAS_NODE_LEASE_MS"] = "60000"  # a restart must not wait for its old lease
    first = start_process("media-node", "registered", VAS_NODE_ID="vas-media-0")
    cameras = [start_camera(width=320, height=240, fps=10, gop=10) for _ in range(2)]
    stream_ids = [await _start(client, camera) for camera in cameras]
    for stream_id in stream_ids:
        assert (await _row(stream_id))["node_id"] == "vas-media-0"
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    restarted_at = utcnow()
    again = start_process("media-node", "registered", VAS_NODE_ID="vas-media-0")

    async def back() -> bool:
        rows = [await _row(s) for s in stream_ids]
        return all(r["state"] == "LIVE" and r["node_id"] == "vas-media-0"
                   and r["lease_expires_at"] > restarted_at for r in rows)
    await until(back, "streams LIVE again on the restarted node", 30)
    assert "restarted with 2 streams of its previous life" in again.output
    rows = await MediaNode.select(MediaNode.node_id, MediaNode.streams)
    assert [r["node_id"] for r in rows] == ["vas-media-0"]
    for camera in cameras:
        await until(lambda c=camera: _one(c.port), f"one ingest of {camera.port}", 10)
    # Its leases are renewed again: a peer would not see the streams as orphans.
    await asyncio.sleep(2)
    rows = [await _row(s) for s in stream_ids]
    assert all(r["lease_expires_at"] > utcnow() for r in rows), rows


async def _one(port: int) -> bool:
    return rtsp_connections(port) == 1
