"""Segment export of OmniSight recordings: CPU cost per recorded hour (mp4 and ts), and the
time from `POST /recordings/:id/stop` to the last segment ready.

    python -m benchmarks.recording_export --seconds 120 --segment 10

`vas up` with a 1080p30 ~4 Mbit/s test camera (GOP 2 s). A recording (`--segment` s, mp4)
runs for `--seconds`; then it is stopped and `GET /recordings/:id` is polled every 50 ms until
`segmentsComplete`. The export cost is measured apart, in this process, on the same recorded
MPEG-TS files (found through the VOD playlist of that range): the CPU time of
`media.segment_export` (keyframe scan, plan, remux into each format, one JPEG thumbnail per
segment), scaled to one recorded hour.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.common import Server, progress
from media.segment_export import export_piece, keyframe_times, plan_pieces
from tests.camera import CameraProfile, TestCamera

CAMERA = CameraProfile(width=1920, height=1080, fps=30, gop=60, bitrate_kbps=4000,
                       pattern="smpte", horizontal_speed=4)
_ENTRY = re.compile(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n#EXTINF:[^\n]*\n(seg_\d+\.ts)")


def recorded(server: Server, stream: str, start: str, end: str, data_dir: Path
             ) -> tuple[list[Path], list[float]]:
    """The recorder's files of [start, end] and their wall-clock starts (VOD playlist)."""
    text = server.http.get(f"/v2/streams/{stream}/hls/playlist.m3u8",
                           params={"start": start, "end": end}).text
    entries = _ENTRY.findall(text)
    directory = data_dir / "recordings" / "hot" / stream
    return ([directory / name for _, name in entries],
            [datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
             for when, _ in entries])


def export_cost(paths: list[Path], starts: list[float], begin: float, end: float,
                segment_s: float, fmt: str, out: Path) -> tuple[float, int]:
    """CPU seconds to export [begin, end) in `fmt`, and how many segments."""
    out.mkdir(parents=True, exist_ok=True)
    cpu = time.process_time()
    pieces = plan_pieces(keyframe_times(paths, starts), begin, end, segment_s, final=True)
    for index, (a, b) in enumerate(pieces):
        export_piece(paths, starts, a, b, out / f"s{index}.{fmt}", out / f"s{index}.jpg", fmt)
    return time.process_time() - cpu, len(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--segment", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        camera = TestCamera(CAMERA)
        camera.start()
        try:
            device = server.http.post("/api/v1/devices", json={
                "name": "bench", "rtsp_url": camera.url}).json()["id"]
            stream = server.http.post(f"/api/v1/devices/{device}/start-stream").json()[
                "v2_stream_id"]
            started = server.http.post(f"/api/v1/cameras/{device}/recordings/start", json={
                "settings": {"segmentDuration": args.segment, "format": "mp4"}}).json()
            progress(f"recording {args.seconds:.0f} s")
            time.sleep(args.seconds)
            stop_at = time.perf_counter()
            stopped = server.http.post(f"/api/v1/recordings/{started['id']}/stop").json()
            while True:
                detail = server.http.get(f"/api/v1/recordings/{started['id']}").json()
                if detail["segmentsComplete"]:
                    break
                time.sleep(0.05)
            ready_s = time.perf_counter() - stop_at
            print(f"stop -> last segment ready: {ready_s * 1000:.0f} ms "
                  f"({detail['segmentCount']} segments)")
            time.sleep(8)  # the recorder closes the segment holding the end
            paths, starts = recorded(server, stream, stopped["startTime"], stopped["endTime"],
                                     Path(tmp) / "var")
            begin = datetime.fromisoformat(stopped["startTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(stopped["endTime"].replace("Z", "+00:00"))
            seconds = (end - begin).total_seconds()
            for fmt in ("mp4", "ts"):
                cpu, count = export_cost(paths, starts, begin.timestamp(), end.timestamp(),
                                         args.segment, fmt, Path(tmp) / f"out-{fmt}")
                print(f"{fmt}: {count} segments of {seconds:.0f} s recorded: {cpu:.2f} CPU s, "
                      f"{cpu / seconds * 3600:.1f} CPU s per recorded hour")
        finally:
            camera.stop()
            server.close()


if __name__ == "__main__":
    main()
