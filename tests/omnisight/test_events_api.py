"""OmniSight events API: list with filters and pages, one event with camera, segment and
objects, a camera's events, custom events posted by integrators, thumbnails; and the merge
rule of core/events.py on the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import cv2
import numpy as np

from core.clock import iso_ms, utcnow
from core.events import EventService
from core.recordings import RecordingIndex
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of, new_user
from tests.vas_fixtures import add_device


def jpeg() -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((360, 640, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def box(x: int) -> list[dict]:
    return [{"id": str(uuid.uuid4()), "type": "person", "confidence": 0.8,
             "boundingBox": {"x": x, "y": 100, "width": 50, "height": 120}}]


async def test_merge_rule_one_event_per_continuous_detection(client, settings):
    events = EventService(settings.server.data_dir)
    camera, stream, start = uuid.uuid4(), uuid.uuid4(), utcnow()
    first, opened = await events.record_detection(
        camera, stream, "person", start, 0.6, box(10), (1280, 720), jpeg(), 10)
    assert opened and first.thumbnail and events.thumbnail_path(first.id).is_file()
    again, opened = await events.record_detection(
        camera, stream, "person", start + timedelta(seconds=8), 0.9, box(20), (1280, 720),
        jpeg(), 10)
    assert not opened and again.id == first.id and again.confidence == 0.9
    assert again.objects[0]["boundingBox"]["x"] == 20
    assert again.last_seen_at == start + timedelta(seconds=8)
    motion, opened = await events.record_detection(
        camera, stream, "motion", start, 1.0, [], (1280, 720), None, 10)
    assert opened and motion.id != first.id  # types are independent
    later, opened = await events.record_detection(
        camera, stream, "person", start + timedelta(seconds=19), 0.7, box(30), (1280, 720),
        jpeg(), 10)
    assert opened and later.id != first.id  # more than the cool-down after the last one

    assert await events.purge_before(start + timedelta(seconds=10)) == 2  # first, motion
    assert not events.thumbnail_path(first.id).exists()
    assert (await events.get(later.id)).id == later.id


async def test_events_list_filter_page_detail_and_thumbnail(client, admin_user, settings):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/a", name="Front Door Camera",
                              location="Front Door")
    other = await add_device(client, "rtsp://127.0.0.1:8554/b")
    events = EventService(settings.server.data_dir)
    stream, start = uuid.uuid4(), utcnow().replace(microsecond=0) - timedelta(minutes=30)
    index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
    await index.add(stream, 4, "seg_4.ts", start - timedelta(seconds=2),
                    start + timedelta(seconds=4), 6.0, 1000, False)
    person, _ = await events.record_detection(
        uuid.UUID(camera), stream, "person", start, 0.82, box(100), (1280, 720), jpeg(), 10)
    for minute in range(1, 13):
        await events.record_detection(uuid.UUID(camera), stream, "motion",
                                      start + timedelta(minutes=minute), 1.0, [], (1280, 720),
                                      None, 10)
    await events.record_detection(uuid.UUID(other), None, "motion", start, 1.0, [],
                                  (640, 360), None, 10)

    listed = await client.get(f"{BASE}/events", headers=headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["total"], body["page"], body["limit"], body["pages"]) == (14, 1, 10, 2)
    assert len(body["events"]) == 10
    stamps = [e["timestamp"] for e in body["events"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    page2 = (await client.get(f"{BASE}/events", headers=headers,
                              params={"page": 2, "limit": 10})).json()
    assert len(page2["events"]) == 4
    assert not {e["id"] for e in page2["events"]} & {e["id"] for e in body["events"]}

    people = (await client.get(f"{BASE}/events", headers=headers,
                               params={"type": "person", "cameraId": camera})).json()
    assert people["total"] == 1
    assert people["events"][0] == {
        "id": str(person.id), "recordingId": None, "cameraId": camera,
        "cameraName": "Front Door Camera", "timestamp": iso_ms(start), "type": "person",
        "confidence": 0.82, "thumbnailPath": f"/media/thumbnails/events/{person.id}",
        "createdAt": iso_ms(person.created_at)}
    window = (await client.get(f"{BASE}/events", headers=headers, params={
        "startTime": iso_ms(start + timedelta(minutes=2)),
        "endTime": iso_ms(start + timedelta(minutes=4))})).json()
    assert window["total"] == 3
    by_camera = (await client.get(f"{BASE}/cameras/{other}/events", headers=headers)).json()
    assert by_camera["total"] == 1 and by_camera["events"][0]["cameraId"] == other

    detail = await client.get(f"{BASE}/events/{person.id}", headers=headers)
    assert detail.status_code == 200, detail.text
    doc = detail.json()
    assert doc["camera"] == {"id": camera, "name": "Front Door Camera", "location": "Front Door"}
    # A recorder segment alone links nothing: no recording of the camera holds the moment
    # (the links are tested in test_event_recordings.py).
    assert (doc["recording"], doc["segmentId"], doc["segment"]) == (None, None, None)
    assert doc["detectedObjects"] == list(person.objects)
    assert doc["detectedObjects"][0]["boundingBox"] == {"x": 100, "y": 100, "width": 50,
                                                        "height": 120}
    assert doc["frameSize"] == {"width": 1280, "height": 720}

    thumb = await client.get(f"{BASE}/media/thumbnails/events/{person.id}", headers=headers)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    assert (await client.get(f"{BASE}/media/thumbnails/events/{person.id}")).status_code == 401


async def test_custom_events_and_bad_input(client, admin_user):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/a")
    posted = await client.post(f"{BASE}/events", headers=headers, json={
        "cameraId": camera, "type": "custom", "confidence": 0.5,
        "description": "door opened", "metadata": {"sensor": "door-1"}})
    assert posted.status_code == 201, posted.text
    event = posted.json()
    assert event["type"] == "custom" and event["cameraId"] == camera
    assert event["thumbnailPath"] is None
    assert event["details"] == {"description": "door opened", "metadata": {"sensor": "door-1"}}
    listed = (await client.get(f"{BASE}/events", headers=headers,
                               params={"type": "custom"})).json()
    assert [e["id"] for e in listed["events"]] == [event["id"]]
    missing_thumb = await client.get(f"{BASE}/media/thumbnails/events/{event['id']}",
                                     headers=headers)
    assert missing_thumb.status_code == 404
    assert error_of(missing_thumb)["code"] == "RESOURCE_NOT_FOUND"

    for body, field in (({"cameraId": camera, "type": "motion"}, "type"),
                        ({"cameraId": camera, "confidence": 1.5}, "confidence")):
        bad = await client.post(f"{BASE}/events", headers=headers, json=body)
        assert bad.status_code == 400 and error_of(bad)["details"]["field"] == field
    unknown = await client.post(f"{BASE}/events", headers=headers,
                                json={"cameraId": str(uuid.uuid4())})
    assert unknown.status_code == 404
    for params in ({"type": "bicycle"}, {"page": 0}, {"limit": 101}, {"cameraId": "x"},
                   {"startTime": "2023-01-02T00:00:00Z", "endTime": "2023-01-01T00:00:00Z"}):
        bad = await client.get(f"{BASE}/events", headers=headers, params=params)
        assert bad.status_code == 400, (params, bad.text)
        assert error_of(bad)["code"] == "VALIDATION_ERROR"
    assert (await client.get(f"{BASE}/events/{uuid.uuid4()}", headers=headers)).status_code == 404
    assert (await client.get(f"{BASE}/cameras/{uuid.uuid4()}/events",
                             headers=headers)).status_code == 404

    user = await new_user(client)
    assert (await client.get(f"{BASE}/events", headers=bearer(user["token"]))).status_code == 200
    refused = await client.post(f"{BASE}/events", headers=bearer(user["token"]),
                                json={"cameraId": camera})
    assert refused.status_code == 403 and error_of(refused)["code"] == "FORBIDDEN"


def frame_with_block(x: int) -> bytes:
    """A 640x360 JPEG, dark but for a white block where `box(x)` is."""
    image = np.full((360, 640, 3), 30, np.uint8)
    image[100:220, x:x + 50] = 255
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def block_at(jpeg_bytes: bytes, objects: list[dict]) -> bool:
    """Whether the JPEG is bright inside every listed box (and only there)."""
    image = cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (360, 640)
    inside = np.zeros(image.shape, bool)
    for obj in objects:
        b = obj["boundingBox"]
        inside[b["y"]:b["y"] + b["height"], b["x"]:b["x"] + b["width"]] = True
    return bool(image[inside].mean() > 200 and image[~inside].mean() < 60)


async def test_the_thumbnail_is_the_frame_whose_boxes_the_event_lists(
    client, admin_user, settings
):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/a")
    events = EventService(settings.server.data_dir)
    start = utcnow()

    async def served(event_id: uuid.UUID) -> tuple[bytes, list[dict]]:
        thumb = await client.get(f"{BASE}/media/thumbnails/events/{event_id}", headers=headers)
        assert thumb.status_code == 200, thumb.text
        detail = await client.get(f"{BASE}/events/{event_id}", headers=headers)
        return thumb.content, detail.json()["detectedObjects"]

    first, _ = await events.record_detection(uuid.UUID(camera), None, "person", start, 0.6,
                                             box(100), (640, 360), frame_with_block(100), 10)
    content, objects = await served(first.id)
    assert objects[0]["boundingBox"]["x"] == 100 and block_at(content, objects)

    # Frame B, more confident, merged in: its boxes and its frame, together.
    merged, opened = await events.record_detection(
        uuid.UUID(camera), None, "person", start + timedelta(seconds=2), 0.9, box(400),
        (640, 360), frame_with_block(400), 10)
    assert not opened and merged.id == first.id
    content, objects = await served(first.id)
    assert objects[0]["boundingBox"]["x"] == 400 and block_at(content, objects)
    assert not block_at(content, list(box(100)))

    # Less confident (frame C) or without a frame: neither the boxes nor the frame change.
    await events.record_detection(uuid.UUID(camera), None, "person",
                                  start + timedelta(seconds=4), 0.7, box(250), (640, 360),
                                  frame_with_block(250), 10)
    await events.record_detection(uuid.UUID(camera), None, "person",
                                  start + timedelta(seconds=5), 0.95, box(250), (640, 360),
                                  None, 10)
    content, objects = await served(first.id)
    assert objects[0]["boundingBox"]["x"] == 400 and block_at(content, objects)
    assert (await events.get(first.id)).confidence == 0.95
    # Rewritten by rename: nothing but the thumbnails is left in the directory.
    assert sorted(p.name for p in events.directory.iterdir()) == [f"{first.id}.jpg"]
