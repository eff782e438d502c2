"""Retention: the worker's hourly job removes old events and their thumbnails with the
recordings (VAS_HLS_RETENTION_HOURS, 7 days by default)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from api.state import services_of
from core.clock import utcnow
from core.errors import NotFound
from core.events import EventService

pytestmark = pytest.mark.slow


async def test_retention_removes_old_events_and_thumbnails(client, settings, worker, app):
    events = EventService(settings.server.data_dir)
    camera, now = uuid.uuid4(), utcnow()
    old, _ = await events.record_detection(camera, None, "person", now - timedelta(days=8),
                                           0.7, [], (640, 360), b"\xff\xd8old", 10)
    new, _ = await events.record_detection(camera, None, "person", now - timedelta(hours=1),
                                           0.7, [], (640, 360), b"\xff\xd8new", 10)
    await services_of(app).jobs.purge_recordings()
    for _ in range(300):  # the worker polls its queue; allow for a loaded machine
        if not events.thumbnail_path(old.id).exists():  # removed after the row
            break
        await asyncio.sleep(0.1)
    assert not events.thumbnail_path(old.id).exists()
    with pytest.raises(NotFound):
        await events.get(old.id)
    assert (await events.get(new.id)).id == new.id
    assert events.thumbnail_path(new.id).read_bytes() == b"\xff\xd8new"
