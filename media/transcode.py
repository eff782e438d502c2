"""VideoTranscoder: a stream's video re-encoded as constrained-baseline H.264 for WebRTC.

One per stream, and only while someone watches over WebRTC: the camera's packets (H.265,
or H.264 that must be scaled down) are decoded with PyAV and encoded with libx264
(``ultrafast``/``zerolatency``, no B-frames, a keyframe every ``keyframe_s``, the bitrate
capped by the VBV). Its output is H.264 access units with SPS/PPS on every keyframe, as the
ingest delivers them: it feeds a GOP cache of its own and then its sink (the stream's
fan-out), so late joiners start at once from the transcoded GOP.

A packet sink (see ``media.packet.PacketSink``): ``on_packet`` only enqueues, a thread of
the transcoder's own decodes and encodes. ``start()`` primes the decoder with the source's
GOP cache and encodes the newest picture at once, so the first consumer does not wait for
the camera's next keyframe; ``stop()`` ends the thread and forgets the cached GOP.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import av.error
from av.video.frame import VideoFrame

from media.gop_cache import GopCache
from media.packet import MediaPacket, PacketSink

logger = logging.getLogger(__name__)

QUEUE_SIZE = 120  # packets: ~4 s at 30 fps before the transcoder drops to a keyframe


class SnapshotSource(Protocol):
    def snapshot(self) -> list[MediaPacket]: ...


@dataclass(frozen=True, slots=True)
class TranscodeSettings:
    """Output of the transcoder; ``width``/``height`` None keep the camera's size."""

    width: int | None = None
    height: int | None = None
    kbps: int = 2500
    keyframe_s: float = 1.0


def h264_level(width: int, height: int) -> int:
    """The H.264 level (times ten) a picture of this size needs at up to 30 fps."""
    pixels = width * height
    if pixels <= 1280 * 720:
        return 31
    if pixels <= 2048 * 1088:
        return 40
    return 51


def profile_level_id(width: int, height: int) -> str:
    """The constrained-baseline profile-level-id (``42e0LL``) of the transcoder's output."""
    return f"42e0{h264_level(width, height):02x}"


def output_size(settings: TranscodeSettings, width: int, height: int) -> tuple[int, int]:
    """The encoded picture size: the settings' (even), or the source's when not set; one
    side given keeps the aspect ratio."""
    if settings.width and settings.height:
        return settings.width // 2 * 2, settings.height // 2 * 2
    if settings.width and width and height:
        return settings.width // 2 * 2, round(height * settings.width / width) // 2 * 2
    if settings.height and width and height:
        return round(width * settings.height / height) // 2 * 2, settings.height // 2 * 2
    return width // 2 * 2, height // 2 * 2


class VideoTranscoder:
    """Decode → (scale) → libx264, on a thread of its own, while started."""

    def __init__(self, source: SnapshotSource, settings: TranscodeSettings, *,
                 fps: float | None = None, name: str = "",
                 cpu_meter: Callable[[float], None] | None = None) -> None:
        self.source = source
        #: Told the CPU seconds of the transcoder's thread, once per packet it handles (the
        #: node's `vas_transcoder_cpu_seconds_total`).
        self.cpu_meter = cpu_meter
        #: Where the H.264 goes, after the transcoder's GOP cache (fan-out, recorder).
        self.sinks: list[PacketSink] = []
        self.settings = settings
        self.fps = fps or 30.0
        self.name = name
        self.gop_cache = GopCache()
        self.starts = 0  # how many times a first consumer started it
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0  # packets dropped when the transcoder fell behind
        self.first_output_s: float | None = None  # start() → first encoded keyframe
        self._lock = threading.Lock()
        # The current run's queue and stop flag; None while stopped.
        self._run_state: tuple[queue.Queue[MediaPacket | None], threading.Event] | None = None

    @property
    def running(self) -> bool:
        return self._run_state is not None

    def on_packet(self, packet: MediaPacket) -> None:
        """Sink interface (ingest thread): queue the packet while running."""
        run = self._run_state
        if run is None:
            return
        try:
            run[0].put_nowait(packet)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start transcoding (idempotent); returns at once, the thread primes itself."""
        with self._lock:
            if self._run_state is not None:
                return
            run: tuple[queue.Queue[MediaPacket | None], threading.Event] = (
                queue.Queue(QUEUE_SIZE), threading.Event())
            self._run_state = run
            self.starts += 1
        logger.info("transcoder %s: started", self.name)
        threading.Thread(target=self._run, args=(run, time.monotonic()),
                         name=f"transcode {self.name}", daemon=True).start()

    def stop(self) -> None:
        """Stop transcoding (idempotent); the thread ends after its current frame."""
        with self._lock:
            run, self._run_state = self._run_state, None
        if run is None:
            return
        jobs, stopped = run
        stopped.set()
        self.gop_cache.clear()
        # Wake the thread if it waits for a packet; when the queue is full it is busy and
        # sees the flag after its current packet.
        with contextlib.suppress(queue.Full):
            jobs.put_nowait(None)
        logger.info("transcoder %s: stopped", self.name)

    def stats(self) -> dict[str, Any]:
        return {"running": self.running, "starts": self.starts, "frames_in": self.frames_in,
                "frames_out": self.frames_out, "dropped": self.dropped,
                "first_output_ms": None if self.first_output_s is None
                else round(self.first_output_s * 1000, 1)}

    # -- transcoder thread ----------------------------------------------------------

    def _run(self, run: tuple[queue.Queue[MediaPacket | None], threading.Event],
             started: float) -> None:
        jobs, stopped = run
        coder = _Coder(self, stopped, started)
        meter = self.cpu_meter
        spent = time.thread_time()
        try:
            coder.prime(self.source.snapshot())
            while not stopped.is_set():
                if meter is not None:  # per packet: what this thread spent since the last
                    now = time.thread_time()
                    meter(now - spent)
                    spent = now
                packet = jobs.get()
                if packet is None or stopped.is_set():
                    break
                coder.live(packet)
        except Exception:
            logger.exception("transcoder %s failed", self.name)
            with self._lock:
                if self._run_state is run:
                    self._run_state = None
        finally:
            coder.close()

    def _emit(self, packet: MediaPacket, stopped: threading.Event) -> None:
        if stopped.is_set():
            return
        self.frames_out += 1
        self.gop_cache.add(packet)
        for sink in self.sinks:
            try:
                sink.on_packet(packet)
            except Exception:
                logger.exception("transcoder %s: sink %r failed", self.name, sink)


class _Coder:
    """The decoder and encoder of one run (thread-confined)."""

    def __init__(self, owner: VideoTranscoder, stopped: threading.Event, started: float) -> None:
        self.owner = owner
        self.stopped = stopped
        self.started: float | None = started  # None once the first picture is out
        self.decoder: Any = None
        self.encoder: Any = None
        self.size = (0, 0)
        self.last_ts: int | None = None  # decode_ts of the newest packet decoded
        self.waiting_for_keyframe = True

    def prime(self, gop: list[MediaPacket]) -> None:
        """Decode the source's cached GOP; encode only its newest picture (the first IDR)."""
        newest: tuple[VideoFrame, MediaPacket] | None = None
        for packet in gop:
            for frame in self._decode(packet):
                newest = (frame, packet)
        if newest is not None:
            self._encode(*newest)

    def live(self, packet: MediaPacket) -> None:
        if self.last_ts is not None and packet.decode_ts <= self.last_ts \
                and not packet.discontinuity:
            return  # already decoded from the GOP cache
        for frame in self._decode(packet):
            self._encode(frame, packet)

    def _decode(self, packet: MediaPacket) -> list[VideoFrame]:
        if self.waiting_for_keyframe and not packet.is_keyframe:
            return []
        if self.decoder is None or (packet.discontinuity and packet.is_keyframe):
            self.decoder = av.CodecContext.create(packet.codec, "r")
        self.waiting_for_keyframe = False
        self.last_ts = packet.decode_ts
        self.owner.frames_in += 1
        try:
            frames = self.decoder.decode(packet.to_av())
        except av.error.FFmpegError as exc:
            logger.debug("transcoder %s: packet did not decode: %s", self.owner.name, exc)
            return []
        return [f for f in frames if isinstance(f, VideoFrame)]

    def _encode(self, frame: VideoFrame, packet: MediaPacket) -> None:
        if self.encoder is None:
            self._open_encoder(frame, packet.time_base)
        width, height = self.size
        if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts = packet.pts
        frame.time_base = packet.time_base
        for out in self.encoder.encode(frame):
            self._send(out, packet)

    def _open_encoder(self, frame: VideoFrame, time_base: Fraction) -> None:
        settings = self.owner.settings
        self.size = output_size(settings, frame.width, frame.height)
        width, height = self.size
        gop = max(1, round(self.owner.fps * settings.keyframe_s))
        level = h264_level(width, height)
        encoder: Any = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = time_base
        encoder.framerate = Fraction(self.owner.fps).limit_denominator(1001)
        encoder.bit_rate = settings.kbps * 1000
        encoder.gop_size = gop
        encoder.max_b_frames = 0
        encoder.options = {
            "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
            "level": f"{level / 10:.1f}",
            "x264-params": (f"keyint={gop}:min-keyint={gop}:scenecut=0:"
                            f"vbv-maxrate={settings.kbps}:vbv-bufsize={settings.kbps}"),
        }
        encoder.open()
        self.encoder = encoder
        logger.info("transcoder %s: %dx%d -> H.264 %dx%d %d kbit/s, keyframe every %d",
                    self.owner.name, frame.width, frame.height, width, height, settings.kbps,
                    gop)

    def _send(self, out: Any, source: MediaPacket) -> None:
        if out.pts is None:
            return
        if self.started is not None:
            self.owner.first_output_s = time.monotonic() - self.started
            self.started = None
        self.owner._emit(MediaPacket(
            data=bytes(out), pts=out.pts, dts=out.dts, time_base=source.time_base,
            is_keyframe=out.is_keyframe, wallclock=source.wallclock,
            discontinuity=source.discontinuity, codec="h264",
        ), self.stopped)

    def close(self) -> None:
        self.decoder = None
        self.encoder = None
