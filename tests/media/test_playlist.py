"""HLS playlist rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from media.hls import SegmentInfo, live_playlist, vod_playlist

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def segment(sequence: int, start: float, duration: float = 6.0, **kw: bool) -> SegmentInfo:
    begin = T0 + timedelta(seconds=start)
    return SegmentInfo(
        sequence=sequence,
        filename=f"seg_{sequence}.ts",
        path=Path(f"/x/seg_{sequence}.ts"),
        start=begin,
        end=begin + timedelta(seconds=duration),
        duration=duration,
        size=1000,
        discontinuity=kw.get("discontinuity", False),
    )


def test_live_playlist() -> None:
    segments = [segment(7, 0), segment(8, 6.02), segment(9, 12.0, 6.5)]
    text = live_playlist(segments, target_duration=6)
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:7",  # 6.5 rounds to 7: the target must cover it
        "#EXT-X-MEDIA-SEQUENCE:7",
        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z",
        "#EXTINF:6.000,",
        "seg_7.ts",
        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.020Z",
        "#EXTINF:6.000,",
        "seg_8.ts",
        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:12.000Z",
        "#EXTINF:6.500,",
        "seg_9.ts",
    ]
    assert "#EXT-X-ENDLIST" not in text
    assert "#EXT-X-MEDIA-SEQUENCE:3" in live_playlist(segments, 6, media_sequence=3)


def test_discontinuities() -> None:
    segments = [
        segment(1, 0),
        segment(2, 30),  # wall-clock gap: the camera was away
        segment(4, 36),  # a sequence number missing
        segment(5, 42, discontinuity=True),  # the recorder said so
        segment(6, 48),
    ]
    lines = vod_playlist(segments, 6).splitlines()
    discontinuity_before = [
        lines[i + 3] for i, line in enumerate(lines) if line == "#EXT-X-DISCONTINUITY"
    ]
    assert discontinuity_before == ["seg_2.ts", "seg_4.ts", "seg_5.ts"]


def test_vod_playlist() -> None:
    text = vod_playlist([segment(1, 0), segment(2, 6)], base_url="/hls/cam1/")
    lines = text.splitlines()
    assert lines[:5] == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    assert "/hls/cam1/seg_2.ts" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert text.count("#EXT-X-PROGRAM-DATE-TIME:") == 2
    assert vod_playlist([]).splitlines()[-1] == "#EXT-X-ENDLIST"


def test_naive_datetimes_are_taken_as_utc() -> None:
    stored = SegmentInfo(
        sequence=1,
        filename="seg_1.ts",
        path=Path("seg_1.ts"),
        start=T0.replace(tzinfo=None),
        end=T0.replace(tzinfo=None) + timedelta(seconds=6),
        duration=6.0,
        size=1,
        discontinuity=False,
    )
    assert "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z" in live_playlist([stored], 6)
