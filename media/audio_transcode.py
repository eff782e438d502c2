"""OpusTranscoder: the camera's audio (AAC, G.711, Opus) as Opus for WebRTC, once per stream.

A packet sink of the ingest's audio (``RtspIngest.add_audio_sink``). While started it
decodes on a thread of its own, resamples to 48 kHz stereo s16 and encodes with PyAV's
libopus in 20 ms frames (960 samples), then hands each Opus packet (time base 1/48000,
the RTP clock of Opus) to its sinks. Started on demand by its owner when the first
audio-taking consumer appears, stopped after the last (docs/codecs.md). Its queue is
bounded: when it falls behind, packets are dropped (counted), never the ingest blocked.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, cast

import av
import av.error
from av.audio.codeccontext import AudioCodecContext
from av.audio.resampler import AudioResampler

from media.audio import AudioInfo
from media.packet import MediaPacket, PacketSink

logger = logging.getLogger(__name__)

OPUS_RATE = 48000
OPUS_TIME_BASE = Fraction(1, OPUS_RATE)
OPUS_FRAME = 960  # 20 ms at 48 kHz
QUEUE_SIZE = 100


class OpusTranscoder:
    """Decode → resample (48 kHz) → libopus; ``start``/``stop`` any number of times."""

    def __init__(self, info: Callable[[], AudioInfo | None], *, bitrate: int = 32000,
                 name: str = "") -> None:
        self._info = info
        self.bitrate = bitrate
        self.name = name
        self.sinks: list[PacketSink] = []
        self.frames_in = 0
        self.packets_out = 0
        self.dropped = 0
        self.starts = 0
        self._queue: queue.Queue[MediaPacket | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the transcoder thread runs."""
        return self._thread is not None

    def stats(self) -> dict[str, object]:
        """What health reports (`codecs.audio_transcoder`)."""
        return {"running": self.running, "starts": self.starts, "packets_in": self.frames_in,
                "packets_out": self.packets_out, "dropped": self.dropped}

    def on_packet(self, packet: MediaPacket) -> None:
        """Take one camera audio packet (ingest thread; never blocks)."""
        if self._thread is None:
            return
        try:
            self._queue.put_nowait(packet)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start transcoding (no-op when running)."""
        with self._lock:
            if self._thread is not None:
                return
            self.starts += 1
            self._queue = queue.Queue(maxsize=QUEUE_SIZE)
            self._thread = threading.Thread(target=self._run, args=(self._queue,),
                                            name=f"opus {self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop: the thread ends after the packet in hand (not waited for: callable on the
        event loop)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            stopping = self._queue
        while True:
            try:
                stopping.put_nowait(None)
                break
            except queue.Full:
                stopping.get_nowait()

    def _run(self, packets: queue.Queue[MediaPacket | None]) -> None:
        chain: _Chain | None = None
        while (packet := packets.get()) is not None:
            info = self._info()
            if info is None:
                continue
            if chain is None or chain.info != info:
                chain = _Chain(info, self.bitrate)
            try:
                out = chain.transcode(packet)
            except (av.error.FFmpegError, ValueError):
                logger.debug("opus %s: undecodable %s packet", self.name, info.codec)
                continue
            self.frames_in += 1
            for opus in out:
                self.packets_out += 1
                for sink in self.sinks:
                    try:
                        sink.on_packet(opus)
                    except Exception:
                        logger.exception("opus %s: sink %r failed", self.name, sink)


class _Chain:
    """One decoder, resampler and encoder for an audio track (transcoder thread only)."""

    def __init__(self, info: AudioInfo, bitrate: int) -> None:
        self.info = info
        decoder = cast(AudioCodecContext, av.CodecContext.create(info.codec, "r"))
        decoder.sample_rate = info.sample_rate
        decoder.layout = "stereo" if info.channels == 2 else "mono"
        if info.extradata:
            decoder.extradata = info.extradata
        self.decoder = decoder
        self.resampler = AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE,
                                        frame_size=OPUS_FRAME)
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = OPUS_RATE
        encoder.layout = "stereo"
        encoder.format = "s16"
        encoder.bit_rate = bitrate
        encoder.time_base = OPUS_TIME_BASE
        encoder.options = {"application": "lowdelay", "frame_duration": "20"}
        encoder.open()
        self.encoder = encoder
        self._next_pts: int | None = None

    def transcode(self, packet: MediaPacket) -> list[MediaPacket]:
        start = round(packet.pts * packet.time_base * OPUS_RATE)
        out: list[MediaPacket] = []
        for frame in self.decoder.decode(packet.to_av()):
            frame.pts = None
            for resampled in self.resampler.resample(frame):
                resampled.pts = None
                for encoded in self.encoder.encode(resampled):
                    if self._next_pts is None or abs(start - self._next_pts) > OPUS_RATE:
                        self._next_pts = start
                    pts = self._next_pts
                    self._next_pts += int(encoded.duration or OPUS_FRAME)
                    out.append(MediaPacket(
                        data=bytes(cast(Any, encoded)), pts=pts, dts=pts,
                        time_base=OPUS_TIME_BASE, is_keyframe=True, wallclock=time.time(),
                        codec="opus"))
        return out
