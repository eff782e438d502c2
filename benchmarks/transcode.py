"""The WebRTC transcoder (docs/codecs.md): its CPU, and what it costs a new consumer.

    python -m benchmarks.transcode --cpu-seconds 15 --samples 10 --latency-seconds 8
    python -m benchmarks.transcode --audio-only --cpu-seconds 20

Audio (`--audio-only` runs only this): one `OpusTranscoder` fed at real time with a
camera's packets (a 1 kHz tone encoded once: AAC-LC 16 kHz mono, 1024-sample frames; G.711
A-law 8 kHz, 20 ms packets), and the recorder's G.711 -> AAC (`RecordingAudio`); CPU as
above.

CPU: a 2 s 1920x1080 30 fps H.265 clip (FFmpeg's moving `testsrc2`, libx265 ultrafast,
1 s GOP, ~4 Mbit/s) is encoded once, then fed in a loop at 30 packets a second to one
`VideoTranscoder` (as the ingest would: no camera, so an H.265 camera's own encoder does
not compete for the two cores); this process's CPU time (getrusage) over `--cpu-seconds`
is the transcoder's: decode, scale and libx264 to 1080p (4000 kbit/s) or 720p (2000).

First frame and glass-to-glass: `vas up` with H.265 and H.264 test cameras (640x360,
30 fps, 1 s GOP, the wall clock burnt into each frame); `vas_client` (the guide's flow)
joins at random moments: "cold" with no other viewer (the transcoder starts for it),
"warm" while another consumer keeps the transcoder running. Glass-to-glass (frame decoded
in the client minus the time written into it) for the H.265 camera (transcoded) against
the H.264 camera (passthrough) gives what transcoding adds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from benchmarks.common import ADMIN_SECRET, Server, percentile, progress
from benchmarks.webrtc import measure
from media.packet import MediaPacket
from media.transcode import TranscodeSettings, VideoTranscoder
from tests.camera import CameraProfile, TestCamera
from vas_client import StreamConsumer, VasClient


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def h265_clip(seconds: float) -> list[MediaPacket]:
    """A 1920x1080, 30 fps, 1 s GOP H.265 clip (FFmpeg's moving `testsrc2`, libx265
    ultrafast ~4 Mbit/s), as the ingest would deliver it."""
    source = av.open("testsrc2=size=1920x1080:rate=30", format="lavfi")
    encoder: Any = av.CodecContext.create("libx265", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1920, 1080, "yuv420p"
    encoder.time_base = Fraction(1, 90000)
    encoder.framerate = Fraction(30)
    encoder.bit_rate = 4_000_000
    encoder.options = {"preset": "ultrafast", "x265-params": "keyint=30:min-keyint=30:bframes=0:"
                       "scenecut=0:repeat-headers=1:log-level=error"}
    packets: list[MediaPacket] = []
    for index, frame in enumerate(source.decode(video=0)):
        if index >= seconds * 30:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        packets += [MediaPacket(bytes(p), p.pts, p.dts, Fraction(1, 90000), p.is_keyframe, 0.0,
                                codec="hevc") for p in encoder.encode(frame)]
    packets += [MediaPacket(bytes(p), p.pts, p.dts, Fraction(1, 90000), p.is_keyframe, 0.0,
                            codec="hevc") for p in encoder.encode(None)]
    source.close()
    return packets


class _Cache:
    def snapshot(self) -> list[MediaPacket]:
        return []


def cpu_of_one_transcoder(seconds: float) -> list[str]:
    """Feed the clip in a loop at 30 fps to one transcoder; its CPU (this process)."""
    clip = h265_clip(2.0)
    rows = []
    for label, settings in (("1080p30 H.265 -> 1080p H.264", TranscodeSettings(kbps=4000)),
                            ("1080p30 H.265 -> 720p H.264",
                             TranscodeSettings(width=1280, height=720, kbps=2000))):
        transcoder = VideoTranscoder(_Cache(), settings, fps=30, name="bench")
        transcoder.start()
        began = time.monotonic()
        sent = 0
        cpu_start: tuple[float, float, int] | None = None
        while time.monotonic() - began < seconds + 2:
            if cpu_start is None and time.monotonic() - began >= 2:  # past the start
                cpu_start = (_cpu(), time.monotonic(), transcoder.frames_out)
            packet = clip[sent % len(clip)]
            loop = sent // len(clip) * len(clip) * 3000
            transcoder.on_packet(dataclasses.replace(
                packet, pts=packet.pts + loop,
                dts=None if packet.dts is None else packet.dts + loop))
            sent += 1
            time.sleep(max(0.0, began + sent / 30 - time.monotonic()))
        assert cpu_start is not None
        cpu, wall, out = cpu_start
        elapsed = time.monotonic() - wall
        used = (_cpu() - cpu) / elapsed * 100
        fps_out = (transcoder.frames_out - out) / elapsed
        transcoder.stop()
        rows.append(f"| {label} | {fps_out:.1f} | {used:.1f} % | {transcoder.dropped} |")
        progress(rows[-1])
    return rows


async def first_frames(url: str, stream_id: str, samples: int, warm: bool) -> list[float]:
    client = VasClient(url, "admin", ADMIN_SECRET)
    firsts: list[float] = []
    background = StreamConsumer(client, stream_id, mode="guide", client_name="keeper")
    try:
        if warm:
            await background.__aenter__()
            async for _ in background.frames(limit=1):
                pass
        for index in range(samples):
            await asyncio.sleep(1.5 + index % 3 * 0.37)  # cold: the transcoder has stopped
            began = time.perf_counter()
            async with StreamConsumer(client, stream_id, mode="guide",
                                      client_name=f"bench-{index}") as consumer:
                async for _ in consumer.frames(limit=1):
                    firsts.append(time.perf_counter() - began)
    finally:
        if warm:
            await background.__aexit__(None, None, None)
        await client.aclose()
    return firsts


def audio_clip(codec: str, rate: int, seconds: float) -> list[MediaPacket]:
    """A tone as a camera sends it, in ``codec`` at ``rate`` Hz, mono."""
    import numpy as np

    encoder: Any = av.CodecContext.create(codec, "w")
    encoder.sample_rate, encoder.layout = rate, "mono"
    encoder.format = "fltp" if codec == "aac" else "s16"
    encoder.time_base = Fraction(1, rate)
    encoder.open()
    step = 1024 if codec == "aac" else rate // 50
    packets: list[MediaPacket] = []
    for start in range(0, int(seconds * rate), step):
        tone = np.sin(2 * np.pi * 1000 * (np.arange(step) + start) / rate) * 0.3
        data = tone.astype(np.float32) if codec == "aac" else (tone * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data[None, :], format=encoder.format.name,
                                           layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in encoder.encode(frame):
            packets.append(MediaPacket(data=bytes(packet), pts=start, dts=start,
                                       time_base=Fraction(1, rate), is_keyframe=True,
                                       wallclock=time.time(), codec=codec))
    return packets


def cpu_of_audio(seconds: float) -> list[str]:
    """One OpusTranscoder (and the recorder's G.711 -> AAC) at real time; its CPU."""
    from media.audio import AudioInfo, RecordingAudio
    from media.audio_transcode import OpusTranscoder

    rows = []
    for label, codec, rate in (("AAC 16 kHz -> Opus", "aac", 16000),
                               ("G.711 A-law 8 kHz -> Opus", "pcm_alaw", 8000),
                               ("G.711 A-law 8 kHz -> AAC (recording)", "pcm_alaw", 8000)):
        clip = audio_clip(codec, rate, 2.0)
        extradata = b"\x14\x08" if codec == "aac" else b""
        info = AudioInfo(codec, rate, 1, extradata, Fraction(1, rate))
        recording = RecordingAudio(info) if "recording" in label else None
        opus = OpusTranscoder(lambda info=info: info, name="bench")
        if recording is None:
            opus.start()
        per_second = rate / (clip[1].pts - clip[0].pts)
        began, sent = time.monotonic(), 0
        cpu_start = _cpu()
        while time.monotonic() - began < seconds:
            packet = clip[sent % len(clip)]
            shift = sent // len(clip) * (clip[-1].pts + clip[1].pts - clip[0].pts)
            packet = dataclasses.replace(packet, pts=packet.pts + shift, dts=packet.pts + shift)
            if recording is not None:
                recording.convert(packet)
            else:
                opus.on_packet(packet)
            sent += 1
            time.sleep(max(0.0, began + sent / per_second - time.monotonic()))
        used = (_cpu() - cpu_start) / (time.monotonic() - began) * 100
        opus.stop()
        out = opus.packets_out / (time.monotonic() - began) if recording is None else 0
        rows.append(f"| {label} | {per_second:.1f} | {out:.1f} | {used:.2f} % | {opus.dropped} |")
        progress(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-seconds", type=float, default=15.0)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--audio-only", action="store_true")
    args = parser.parse_args()
    audio_rows = cpu_of_audio(args.cpu_seconds)
    print("| audio transcoder | packets in/s | Opus packets out/s | CPU (% of one core) "
          "| dropped |")
    print("| --- | --- | --- | --- | --- |")
    for row in audio_rows:
        print(row)
    if args.audio_only:
        return
    cpu_rows = cpu_of_one_transcoder(args.cpu_seconds)
    join_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            for codec in ("h265", "h264"):
                camera = TestCamera(CameraProfile(codec=codec, width=640, height=360, fps=30,
                                                  gop=30, bitrate_kbps=2000, pattern="smpte",
                                                  horizontal_speed=4, overlay_time=True))
                camera.start()
                try:
                    device = server.http.post("/api/v1/devices", json={
                        "name": codec, "rtsp_url": camera.url}).json()["id"]
                    stream = server.http.post(
                        f"/api/v1/devices/{device}/start-stream").json()["v2_stream_id"]
                    time.sleep(2)
                    for warm in (False, True):
                        firsts = asyncio.run(first_frames(server.url, stream, args.samples, warm))
                        join_rows.append(
                            f"| {codec} | {'warm' if warm else 'cold'} | {len(firsts)} "
                            f"| {percentile(firsts, 50) * 1000:.0f} ms "
                            f"| {percentile(firsts, 95) * 1000:.0f} ms |")
                        progress(join_rows[-1])
                    _, latencies = asyncio.run(measure(server.url, stream, 0,
                                                       args.latency_seconds, 1.0))
                    join_rows.append(
                        f"| {codec} | glass-to-glass | {len(latencies)} "
                        f"| {percentile(latencies, 50) * 1000:.0f} ms "
                        f"| {percentile(latencies, 95) * 1000:.0f} ms |")
                    progress(join_rows[-1])
                    server.http.post(f"/api/v1/devices/{device}/stop-stream")
                finally:
                    camera.stop()
        finally:
            server.close()
    print("| transcoder | encoded fps | CPU (% of one core) | dropped |")
    print("| --- | --- | --- | --- |")
    for row in cpu_rows:
        print(row)
    print()
    print("| camera | case | samples | p50 | p95 |")
    print("| --- | --- | --- | --- | --- |")
    for row in join_rows:
        print(row)


if __name__ == "__main__":
    main()
