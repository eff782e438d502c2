"""Media nodes as separate processes: SIGKILL the owner, the stream comes back LIVE on the
other node within 15 s of the lease expiring."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from core.tables import Stream
from tests.conftest import bearer
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_killed_owner_hands_the_stream_to_the_other_node(client, admin_token, start_process,
                                                               start_camera, settings):
    first = start_process("media-node", "registered")
    second = start_process("media-node", "registered")
    camera = start_camera(gop=15)
    device_id = await add_device(client, camera.url)
    stream_id = (await client.post(f"/api/v1/devices/{device_id}/start-stream",
                                   timeout=40)).json()["v2_stream_id"]
    row = await Stream.select(Stream.node_id).where(Stream.id == stream_id).first()
    owner = row["node_id"]
    victim = first if str(first.proc.pid) in owner else second
    survivor = second if victim is first else first
    assert str(victim.proc.pid) in owner

    killed_at = time.monotonic()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    lease = settings.media.lease_s
    headers = bearer(admin_token)
    deadline = killed_at + lease + 15
    while time.monotonic() < deadline:
        row = await Stream.select(Stream.node_id, Stream.state).where(Stream.id == stream_id).first()
        if row["state"] == "LIVE" and row["node_id"] != owner:
            break
        await asyncio.sleep(0.2)
    recovered_after = time.monotonic() - killed_at
    assert row["state"] == "LIVE" and str(survivor.proc.pid) in row["node_id"], row
    assert recovered_after < lease + 15
    detail = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()
    assert detail["state"] == "LIVE"
    again = (await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)).json()
    assert again["reconnect"] is True and again["v2_stream_id"] == stream_id
    print(f"failover: LIVE on the other node {recovered_after:.2f} s after SIGKILL "
          f"(lease {lease:g} s)")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_nodes_take_start_jobs_only_while_they_have_capacity(client, start_process,
                                                                   start_camera, settings_env):
    settings_env["VAS_NODE_CAPACITY"] = "1"
    nodes = [start_process("media-node", "registered") for _ in range(2)]
    owners = []
    for _ in range(2):
        camera = start_camera()
        device_id = await add_device(client, camera.url)
        answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
        assert answer.status_code == 200, answer.text
        row = await Stream.select(Stream.node_id).where(
            Stream.id == answer.json()["v2_stream_id"]).first()
        owners.append(row["node_id"])
    assert len(set(owners)) == 2, owners
    assert {pid for pid in (str(n.proc.pid) for n in nodes) if any(pid in o for o in owners)} == {
        str(n.proc.pid) for n in nodes}
