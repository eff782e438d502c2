"""A media-node runtime on the test's real database, with fake cameras at the ingest edge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from core.credentials import CredentialBox
from core.db import close_database, open_database
from core.devices import DeviceChanges, DeviceService
from core.settings import Settings
from core.streams import StreamService
from jobs.node.runtime import MediaNodeRuntime
from tests.node.fake_ingest import FakeCameras


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Settings]:
    engine = await open_database(settings.database)
    yield settings
    await close_database(engine)


@pytest.fixture
def cameras() -> FakeCameras:
    return FakeCameras()


@pytest.fixture
async def runtime(database: Settings, cameras: FakeCameras) -> AsyncIterator[MediaNodeRuntime]:
    node = MediaNodeRuntime(database, "node-a", ingest_factory=cameras)
    yield node
    await node.shutdown()


@pytest.fixture
def new_stream(database: Settings):
    """`await new_stream("ok")`: a camera at rtsp://192.0.2.1/<path> and its INITIALIZING
    stream; returns the stream id."""
    devices = DeviceService(CredentialBox(database.auth.credentials_key))

    async def make(path: str = "ok") -> uuid.UUID:
        device = await devices.create(DeviceChanges(
            name=f"cam-{uuid.uuid4().hex[:6]}", rtsp_url=f"rtsp://192.0.2.1/{path}"))
        stream, created = await StreamService().create(device.id)
        assert created
        return stream.id

    return make
