"""Events and the recordings that hold their moment: `recordingId`, `recording` and `segment`
of an event, `GET /events?recordingId=` and `GET /recordings/:id/events` agree (an event in a
manual recording links to it, one in the continuous recording only to that, one outside
every recording to none); and what deleting a camera forgets (its detection settings) and
keeps (its events and thumbnails)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from core.clock import iso_ms, utcnow
from core.events import EventService
from core.recording_segments import HLS_SEGMENT_NAMESPACE
from core.recordings import RecordingIndex
from core.tables import DetectionSetting, RecordingSegment, RecordingSession
from tests.conftest import bearer
from tests.omnisight.conftest import BASE
from tests.omnisight.test_events_api import box, jpeg
from tests.vas_fixtures import add_device


async def _session(camera: str, session_id: uuid.UUID, stream: uuid.UUID, kind: str,
                   start: datetime, end: datetime) -> None:
    await RecordingSession.insert(RecordingSession(
        id=session_id, camera_id=uuid.UUID(camera), stream_id=stream, kind=kind,
        status="completed", start_at=start, end_at=end, segment_duration=60,
        format="mp4" if kind == "manual" else "ts", created_at=start, updated_at=end))


async def _manual_segment(session_id: uuid.UUID, sequence: int, start: datetime,
                          seconds: int) -> uuid.UUID:
    segment_id = uuid.uuid4()
    await RecordingSegment.insert(RecordingSegment(
        id=segment_id, session_id=session_id, sequence=sequence,
        filename=f"segment_{sequence:05d}.mp4", start_at=start,
        end_at=start + timedelta(seconds=seconds), duration=float(seconds), size=1000,
        format="mp4", created_at=start))
    return segment_id


async def _get(client: Any, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = await client.get(f"{BASE}{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_events_link_to_the_recording_and_segment_that_hold_their_moment(
    client, admin_user, settings
):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/a")
    other = await add_device(client, "rtsp://127.0.0.1:8554/b")
    events = EventService(settings.server.data_dir)
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
    stream, manual = uuid.uuid4(), uuid.uuid4()
    # The stream's continuous recording [t0-10min, t0+10min], one recorder segment round t0;
    # a manual recording inside it [t0+2min, t0+4min] with two one-minute segments.
    await _session(camera, stream, stream, "continuous", t0 - timedelta(minutes=10),
                   t0 + timedelta(minutes=10))
    # (It starts 1 s before its first keyframe, where its first segment begins.)
    await _session(camera, manual, stream, "manual", t0 + timedelta(minutes=2, seconds=-1),
                   t0 + timedelta(minutes=4))
    index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
    await index.add(stream, 4, "seg_4.ts", t0 - timedelta(seconds=2), t0 + timedelta(seconds=4),
                     6.0, 1000, False)
    first = await _manual_segment(manual, 1, t0 + timedelta(minutes=2), 60)
    second = await _manual_segment(manual, 2, t0 + timedelta(minutes=3), 60)

    async def detected(kind: str, at: datetime, cam: str = camera) -> str:
        event, opened = await events.record_detection(
            uuid.UUID(cam), stream, kind, at, 0.9, box(10), (1280, 720), jpeg(), 10)
        assert opened
        return str(event.id)

    in_continuous = await detected("person", t0)
    in_manual = await detected("motion", t0 + timedelta(minutes=3, seconds=30))
    before_keyframe = await detected("person", t0 + timedelta(minutes=2, seconds=-0.5))
    no_segment = await detected("motion", t0 + timedelta(minutes=8))
    on_other_camera = await detected("motion", t0, other)
    outside = (await client.post(f"{BASE}/events", headers=headers, json={
        "cameraId": camera, "timestamp": iso_ms(t0 + timedelta(minutes=30))})).json()["id"]

    detail = await _get(client, headers, f"/events/{in_continuous}")
    assert detail["recordingId"] == str(stream)
    assert detail["recording"] == {
        "id": str(stream), "type": "continuous", "startTime": iso_ms(t0 - timedelta(minutes=10)),
        "endTime": iso_ms(t0 + timedelta(minutes=10))}
    hls_id = str(uuid.uuid5(HLS_SEGMENT_NAMESPACE, f"{stream}/seg_4.ts"))
    assert detail["segmentId"] == hls_id
    assert detail["segment"] == {
        "id": hls_id, "startTime": iso_ms(t0 - timedelta(seconds=2)),
        "endTime": iso_ms(t0 + timedelta(seconds=4)), "filePath": f"/v2/streams/{stream}/hls/seg_4.ts"}
    # The same segment as the recording lists it.
    listed = await _get(client, headers, f"/recordings/{stream}/segments")
    assert hls_id in [s["id"] for s in listed["segments"]]

    detail = await _get(client, headers, f"/events/{in_manual}")
    assert detail["recordingId"] == str(manual) and detail["recording"]["type"] == "manual"
    assert detail["segmentId"] == str(second)
    assert detail["segment"]["filePath"] == f"/api/v1/media/segments/{second}"

    detail = await _get(client, headers, f"/events/{before_keyframe}")
    assert detail["recordingId"] == str(manual) and detail["segmentId"] == str(first)

    detail = await _get(client, headers, f"/events/{no_segment}")
    assert detail["recordingId"] == str(stream) and detail["segment"] is None
    detail = await _get(client, headers, f"/events/{outside}")
    assert (detail["recordingId"], detail["recording"], detail["segment"]) == (None, None, None)
    assert (await _get(client, headers, f"/events/{on_other_camera}"))["recording"] is None

    # The lists agree with each other and with each event's own link.
    def ids(page: dict[str, Any]) -> set[str]:
        return {e["id"] for e in page["events"]}

    for recording, held in ((manual, {in_manual, before_keyframe}),
                            (stream, {in_continuous, in_manual, before_keyframe, no_segment})):
        by_filter = await _get(client, headers, "/events", recordingId=str(recording))
        by_route = await _get(client, headers, f"/recordings/{recording}/events")
        assert ids(by_filter) == ids(by_route) == held, recording
        assert by_filter["total"] == by_route["total"] == len(held)
        detail_events = (await _get(client, headers, f"/recordings/{recording}"))["events"]
        assert {e["id"] for e in detail_events} == held
    everything = await _get(client, headers, "/events", limit=100)
    links = {e["id"]: e["recordingId"] for e in everything["events"]}
    assert links == {in_continuous: str(stream), in_manual: str(manual), no_segment: str(stream),
                     before_keyframe: str(manual), on_other_camera: None, outside: None}
    typed = await _get(client, headers, "/events", recordingId=str(stream), type="person")
    assert ids(typed) == {in_continuous, before_keyframe}
    assert (await _get(client, headers, "/events", recordingId=str(uuid.uuid4())))["total"] == 0
    assert (await _get(client, headers, "/events", recordingId=str(stream),
                       cameraId=other))["total"] == 0
    bad = await client.get(f"{BASE}/events", headers=headers,
                           params={"recordingId": str(stream), "type": "bicycle"})
    assert bad.status_code == 400


async def test_deleting_a_camera_forgets_its_detection_settings_and_keeps_its_events(
    client, admin_user, settings
):
    headers = bearer(admin_user["token"])
    events = EventService(settings.server.data_dir)
    region = {"name": "Door", "coordinates": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}
    kept: dict[str, str] = {}
    for way in ("omnisight", "vas"):
        camera = await add_device(client, "rtsp://127.0.0.1:8554/a")
        put = await client.put(f"{BASE}/cameras/{camera}/detection", headers=headers,
                               json={"regions": [region]})
        assert put.status_code == 200, put.text
        assert await DetectionSetting.exists().where(DetectionSetting.scope == camera)
        event, _ = await events.record_detection(
            uuid.UUID(camera), None, "person", utcnow(), 0.8, box(5), (640, 360), jpeg(), 10)
        kept[camera] = str(event.id)
        if way == "omnisight":
            gone = await client.delete(f"{BASE}/cameras/{camera}", headers=headers)
            assert gone.status_code == 200, gone.text
        else:
            gone = await client.delete(f"/api/v1/devices/{camera}")
            assert gone.status_code == 204, gone.text
        assert not await DetectionSetting.exists().where(DetectionSetting.scope == camera), way
        missing = await client.get(f"{BASE}/cameras/{camera}/detection", headers=headers)
        assert missing.status_code == 404

    # History stays (like recordings): listed without a name, the thumbnail still served,
    # until retention removes it with the recordings of that age.
    for camera, event_id in kept.items():
        listed = await _get(client, headers, "/events", cameraId=camera)
        assert [(e["id"], e["cameraName"]) for e in listed["events"]] == [(event_id, "")]
        detail = await _get(client, headers, f"/events/{event_id}")
        assert detail["camera"] is None and detail["detectedObjects"]
        thumb = await client.get(f"{BASE}/media/thumbnails/events/{event_id}", headers=headers)
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    # The global settings are untouched.
    assert (await _get(client, headers, "/detection/settings"))["regions"][0]["name"] != "Door"
