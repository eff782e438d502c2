"""OmniSight response bodies of recordings and their segments (camelCase, ISO times)."""

from __future__ import annotations

import math
from typing import Any

from core.clock import iso_ms
from core.devices import DeviceRecord
from core.recording_segments import SegmentRecord
from core.recording_sessions import SessionRecord

BASE = "/api/v1"


def segment_file_path(segment: SegmentRecord) -> str:
    """Where the segment is downloaded: the media route, or the guide's HLS route for the
    recorder's own segments (continuous recordings)."""
    if segment.hls_stream_id is not None:
        return f"/v2/streams/{segment.hls_stream_id}/hls/{segment.filename}"
    return f"{BASE}/media/segments/{segment.id}"


def segment_thumbnail_path(segment: SegmentRecord) -> str | None:
    if segment.thumbnail is None:
        return None
    return f"{BASE}/media/thumbnails/segments/{segment.id}"


def segment_view(segment: SegmentRecord) -> dict[str, Any]:
    """A segment as `GET /recordings/:id/segments` lists it."""
    return {
        "id": str(segment.id), "recordingId": str(segment.session_id),
        "startTime": iso_ms(segment.start), "endTime": iso_ms(segment.end),
        "duration": round(segment.duration, 3), "filePath": segment_file_path(segment),
        "fileSize": segment.size, "format": segment.format, "resolution": segment.resolution,
        "thumbnailPath": segment_thumbnail_path(segment),
        "createdAt": iso_ms(segment.created_at),
    }


def _times(record: SessionRecord) -> dict[str, Any]:
    # segmentsComplete: every segment of the session is written (continuous: always).
    complete = record.kind == "continuous" or record.exported_until is not None
    return {"startTime": iso_ms(record.start), "endTime": iso_ms(record.end),
            "duration": round(record.duration_s(), 3), "status": record.status,
            "segmentsComplete": complete}


def settings_view(record: SessionRecord) -> dict[str, Any]:
    return {"segmentDuration": record.settings.segment_duration_s,
            "format": record.settings.format, "resolution": record.settings.resolution}


def recording_item_view(record: SessionRecord, camera_name: str | None,
                        thumbnail_path: str | None) -> dict[str, Any]:
    """A recording in `GET /recordings`."""
    return {
        "id": str(record.id), "cameraId": str(record.camera_id), "cameraName": camera_name,
        **_times(record), "type": record.kind, "settings": settings_view(record),
        "segmentCount": record.segment_count, "thumbnailPath": thumbnail_path,
        "createdAt": iso_ms(record.created_at),
    }


def recording_detail_view(record: SessionRecord, camera: DeviceRecord | None,
                          segments: list[SegmentRecord], events: list[dict[str, Any]]
                          ) -> dict[str, Any]:
    """`GET /recordings/:id`."""
    return {
        "id": str(record.id), "cameraId": str(record.camera_id),
        "camera": None if camera is None else {
            "id": str(camera.id), "name": camera.name, "location": camera.location},
        **_times(record), "type": record.kind, "settings": settings_view(record),
        "segmentCount": record.segment_count,
        "segments": [
            {k: v for k, v in segment_view(s).items()
             if k not in ("recordingId", "format", "resolution", "createdAt")}
            for s in segments
        ],
        "events": events, "error": record.error,
        "createdAt": iso_ms(record.created_at), "updatedAt": iso_ms(record.updated_at),
    }


def page_view(key: str, items: list[dict[str, Any]], total: int, page: int, limit: int
              ) -> dict[str, Any]:
    return {key: items, "total": total, "page": page, "limit": limit,
            "pages": math.ceil(total / limit) if total else 0}
