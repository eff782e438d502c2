"""`GET /media/segments/:id?format=mp4`: a continuous recording's MPEG-TS segment, remuxed
with the next one into a faststart MP4 that PyAV decodes frame by frame (every frame of both
segments, in order, none re-encoded); the TS itself without `format`; Range on the MP4;
a bad format is 400 and an unknown id 404, both in the OmniSight shape; a manual recording's
`ts` segment remuxed alone."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import av

from core import recordings
from core.recording_segments import HLS_SEGMENT_NAMESPACE
from core.recordings import RecordingIndex
from core.tables import RecordingSegment, RecordingSession
from tests.conftest import bearer
from tests.media.test_clip import top_level_boxes
from tests.media.test_snapshot import (
    SEGMENT_FRAMES,
    encode_counter_video,
    read_counter,
    write_segments,
)
from tests.omnisight.conftest import BASE, error_of
from tests.vas_fixtures import add_device


async def test_a_continuous_segment_plays_as_mp4(client, admin_user, settings, tmp_path,
                                                 monkeypatch):
    # One row per lookup query: the older segment is found on a later page.
    monkeypatch.setattr(recordings, "LOOKUP_PAGE", 1)
    headers = bearer(admin_user["token"])
    stream = uuid.uuid4()
    index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
    packets = encode_counter_video(2 * SEGMENT_FRAMES)  # two 6 s segments, as the recorder
    paths, starts = write_segments(packets, index.directory(stream), start_jitter=[0, 0],
                                   pts_offsets=[0, 0])
    for sequence, (path, start) in enumerate(zip(paths, starts, strict=True)):
        at = datetime.fromtimestamp(start, UTC)
        end = datetime.fromtimestamp(start + 6.0, UTC)
        await index.add(stream, sequence, path.name, at, end, 6.0, path.stat().st_size, False)
    first = uuid.uuid5(HLS_SEGMENT_NAMESPACE, f"{stream}/seg_0.ts")
    path = f"{BASE}/media/segments/{first}"

    raw = await client.get(path, headers=headers)
    assert raw.status_code == 200 and raw.headers["content-type"] == "video/mp2t"
    assert raw.content == paths[0].read_bytes()

    mp4 = await client.get(path, headers=headers, params={"format": "mp4"})
    assert mp4.status_code == 200, mp4.text
    assert mp4.headers["content-type"] == "video/mp4"
    saved = tmp_path / "played.mp4"
    saved.write_bytes(mp4.content)
    boxes = top_level_boxes(saved)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: a browser plays it at once
    with av.open(io.BytesIO(mp4.content)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        frames = [(read_counter(f), f.time) for f in container.decode(video)]
    # Both segments' frames, in order, at their own times from the first segment's start.
    assert [n for n, _ in frames] == list(range(2 * SEGMENT_FRAMES))
    assert all(abs(t - n / 30 - frames[0][1]) < 0.002 for n, t in frames), frames[:3]
    # A repeat is served from the cache, the same bytes; a range of it is 206.
    again = await client.get(path, headers={**headers, "Range": "bytes=0-99"},
                             params={"format": "mp4"})
    assert again.status_code == 206 and again.content == mp4.content[:100]

    # The newest segment (no next one yet) alone: its frames only.
    last = uuid.uuid5(HLS_SEGMENT_NAMESPACE, f"{stream}/seg_1.ts")
    alone = await client.get(f"{BASE}/media/segments/{last}", headers=headers,
                             params={"format": "mp4"})
    assert alone.status_code == 200, alone.text
    with av.open(io.BytesIO(alone.content)) as container:
        numbers = [read_counter(f) for f in container.decode(video=0)]
    assert numbers == list(range(SEGMENT_FRAMES, 2 * SEGMENT_FRAMES))

    bad = await client.get(path, headers=headers, params={"format": "webm"})
    assert bad.status_code == 400
    error = error_of(bad)
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == "format"
    unknown = await client.get(f"{BASE}/media/segments/{uuid.uuid4()}", headers=headers,
                               params={"format": "mp4"})
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "RESOURCE_NOT_FOUND"


async def test_a_manual_ts_segment_plays_as_mp4(client, admin_user, settings):
    """A manual recording in `ts` format: `?format=mp4` remuxes its segment alone."""
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/a")
    packets = encode_counter_video(SEGMENT_FRAMES)
    session, segment = uuid.uuid4(), uuid.uuid4()
    directory = settings.server.data_dir / "recordings" / "sessions" / str(session)
    [path], [start] = write_segments(packets, directory, start_jitter=[0], pts_offsets=[0])
    path = path.rename(directory / "segment_00001.ts")
    at, end = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + 6.0, UTC)
    await RecordingSession.insert(RecordingSession(
        id=session, camera_id=uuid.UUID(camera), stream_id=uuid.uuid4(), kind="manual",
        status="completed", start_at=at, end_at=end, segment_duration=10, format="ts",
        created_at=at, updated_at=end))
    await RecordingSegment.insert(RecordingSegment(
        id=segment, session_id=session, sequence=1, filename=path.name, start_at=at,
        end_at=end, duration=6.0, size=path.stat().st_size, format="ts", created_at=end))

    raw = await client.get(f"{BASE}/media/segments/{segment}", headers=headers)
    assert raw.status_code == 200 and raw.headers["content-type"] == "video/mp2t"
    mp4 = await client.get(f"{BASE}/media/segments/{segment}", headers=headers,
                           params={"format": "mp4"})
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4", mp4.text
    with av.open(io.BytesIO(mp4.content)) as container:
        numbers = [read_counter(f) for f in container.decode(video=0)]
    assert numbers == list(range(SEGMENT_FRAMES))
