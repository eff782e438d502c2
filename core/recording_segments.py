"""The segments of OmniSight recordings, as records: files exported for manual sessions
(`vas_recording_segment`), and the recorder's own HLS segments for continuous ones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Continuous sessions show the recorder's HLS segments; their ids are derived, stable UUIDs.
HLS_SEGMENT_NAMESPACE = uuid.UUID("5b0d6a1e-6f33-4d4e-9a51-6c2f1d1e0a11")


def hls_segment_id(stream_id: uuid.UUID, filename: str) -> uuid.UUID:
    """The OmniSight id of a recorder segment (stable, derived: no row stores it)."""
    return uuid.uuid5(HLS_SEGMENT_NAMESPACE, f"{stream_id}/{filename}")


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One file of a recording. `filename`/`thumbnail` are names inside the session's
    directory (manual) or the stream's HLS directory (continuous, `hls_stream_id` set)."""

    id: uuid.UUID
    session_id: uuid.UUID
    sequence: int
    filename: str
    thumbnail: str | None
    start: datetime
    end: datetime
    duration: float
    size: int
    format: str
    resolution: str | None
    created_at: datetime
    hls_stream_id: uuid.UUID | None = None

    @staticmethod
    def of_hls(session_id: uuid.UUID, row: dict[str, Any], resolution: str | None
               ) -> SegmentRecord:
        """A recorder segment shown as a segment of the stream's continuous session."""
        stream_id = row["stream_id"]
        return SegmentRecord(
            id=hls_segment_id(stream_id, row["filename"]),
            session_id=session_id, sequence=int(row["sequence"]), filename=row["filename"],
            thumbnail=None, start=row["start_at"], end=row["end_at"],
            duration=float(row["duration"]), size=int(row["size"]), format="ts",
            resolution=resolution, created_at=row["end_at"], hls_stream_id=stream_id)


def segment_record(row: dict[str, Any]) -> SegmentRecord:
    """A `vas_recording_segment` row as a record."""
    return SegmentRecord(
        id=row["id"], session_id=row["session_id"], sequence=int(row["sequence"]),
        filename=row["filename"], thumbnail=row["thumbnail"], start=row["start_at"],
        end=row["end_at"], duration=float(row["duration"]), size=int(row["size"]),
        format=row["format"], resolution=row["resolution"], created_at=row["created_at"])
