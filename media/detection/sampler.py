"""FrameSampler: decodes a stream's H.264 packets at the detection interval, cheaply.

H.264 cannot decode an arbitrary frame on its own: a P-frame needs every frame back to the
previous keyframe. So the cost of "one frame per interval" depends on the camera's GOP
(keyframe spacing):

- **GOP <= interval** (most cameras at their default GOP of 1 to 2 s, with an interval of
  1 to 2 s): only keyframes are decoded, one per sample. Everything in between is dropped
  without being decoded (the same effect as ``skip_frame = "NONKEY"`` in the codec
  context, without feeding the packets in at all).
- **GOP > interval**: the frames from a keyframe up to the sample time must be decoded; the
  sampler stops feeding the decoder after the last sample that the next keyframe cannot
  serve, and starts again at a keyframe. With a 2 s GOP and a 1 s interval that is about
  half of the frames.

``max_lateness`` trades timeliness for cost: when the next keyframe is expected at most
that many seconds after a sample is due, the sampler waits for it instead of decoding the
frames in between. The GOP is learned from the keyframes seen; until two have been seen
the sampler decodes the chain (it cannot know better).

Samples keep to a grid ``interval`` seconds apart, each the first frame at or after its
grid time, so over any stretch there is at most one frame per interval (two samples can be
up to one frame period closer than ``interval`` when the interval is not a whole number of
frames). A sample that comes later than its grid time by more than a frame (a keyframe
waited for, a gap) starts a new grid from itself. Each sample is downscaled once to
``width`` (aspect kept) and converted to a BGR numpy array, the format OpenCV and the JPEG
encoder take.

Blocking and not thread-safe: run it on the ingest's packet path or a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

_JITTER = 0.01  # seconds of timestamp jitter tolerated when a sample is due
_BACKWARDS = 1.0  # a timestamp this far behind the last one means a new source


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One decoded, downscaled frame: ``image`` is BGR (H x W x 3, uint8); ``time`` its
    presentation time in seconds; ``wallclock`` the Unix time its packet arrived (None for
    plain ``av.Packet`` input); ``source_size`` the decoded (w, h) before downscaling."""

    time: float
    image: npt.NDArray[np.uint8]
    wallclock: float | None
    source_size: tuple[int, int]


@dataclass
class SamplerStats:
    """Counters for the cost: packets seen, packets decoded, samples produced."""

    packets: int = 0
    decoded: int = 0
    samples: int = 0


class FrameSampler:
    """Feeds packets in decode order (:meth:`feed`); yields a frame at most every ``interval``.

    Packets are what the ingest delivers: Annex B, every keyframe carrying its SPS/PPS.
    For packets from a container that keeps the parameter sets apart (MP4's avcC), pass
    the stream's ``extradata``.
    """

    def __init__(
        self,
        interval: float,
        width: int = 640,
        *,
        codec: str = "h264",
        extradata: bytes | None = None,
        max_lateness: float | None = None,
        fast: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval {interval} must be positive")
        self.interval = interval
        self.width = width
        self.max_lateness = interval / 4 if max_lateness is None else max_lateness
        self.stats = SamplerStats()
        self._codec = codec
        self._extradata = extradata
        self._fast = fast
        self._decoder = self._new_decoder()
        self._due: float | None = None  # time the next sample is due; None: next keyframe
        self._decoding = False  # whether the decoder is being fed (since a keyframe)
        self._last_time: float | None = None
        self._last_keyframe: float | None = None
        self._gop: float | None = None
        self._frame_period = 0.0  # spacing of the last two packets, seconds

    @property
    def gop(self) -> float | None:
        """The keyframe spacing seen last, in seconds (None until two keyframes)."""
        return self._gop

    def reset(self) -> None:
        """Start over (a new source connection): the next keyframe is sampled."""
        self._decoder = self._new_decoder()
        self._due = None
        self._decoding = False
        self._last_time = None
        self._last_keyframe = None
        self._gop = None

    def feed(self, packet: MediaPacket | av.Packet[Any]) -> SampledFrame | None:
        """Take the next packet; return a sample when this packet completes one."""
        if isinstance(packet, MediaPacket):
            if packet.codec != self._codec:  # an H.265 camera: decode what it sends
                self._codec = packet.codec
                self.reset()
            elif packet.discontinuity:
                self.reset()
            wallclock: float | None = packet.wallclock
            pts: int | None = packet.pts
            time_base, keyframe = packet.time_base, packet.is_keyframe
        else:
            wallclock = None
            pts, time_base, keyframe = packet.pts, packet.time_base, packet.is_keyframe
        if pts is None or time_base is None:
            return None  # no place on the timeline (RTSP before the first RTCP report)
        self.stats.packets += 1
        time = float(pts * time_base)
        if self._last_time is not None and time < self._last_time - _BACKWARDS:
            logger.info("timestamps went back %.1f s: sampling starts over", self._last_time - time)
            self.reset()
        if self._last_time is not None and time > self._last_time:
            self._frame_period = time - self._last_time
        self._last_time = time

        if keyframe:
            if self._last_keyframe is not None and time > self._last_keyframe:
                self._gop = time - self._last_keyframe
            self._last_keyframe = time
            wanted = self._is_due(time) or self._need_chain(time)
            if wanted:
                self._decoding = True  # a keyframe needs nothing before it
            elif self._decoding:
                self._stop_decoding()  # the next keyframe serves the next sample
        if not self._decoding:
            return None

        frames = self._decode(packet)
        sample = None
        for frame in frames:
            frame_time = float(frame.time) if frame.time is not None else time
            if self._is_due(frame_time):
                sample = self._sample(frame, frame_time, wallclock)
                self._due = self._next_due(frame_time)
        if sample is not None and not self._need_chain(self._last_keyframe or time):
            self._stop_decoding()
        return sample

    def _next_due(self, sample_time: float) -> float:
        """Keep to a grid of ``interval`` while samples land within a frame of their due
        time (so 1.5 s at 15 fps does not drift by a frame per sample); start a new grid
        from a sample that came later (a keyframe waited for, a gap in the stream)."""
        if self._due is not None and sample_time - self._due < self._frame_period + _JITTER:
            return self._due + self.interval
        return sample_time + self.interval

    def _is_due(self, time: float) -> bool:
        return self._due is None or time >= self._due - _JITTER

    def _need_chain(self, keyframe_time: float) -> bool:
        """Whether frames after the keyframe at ``keyframe_time`` must be decoded because
        the next keyframe comes too late for the next sample."""
        if self._gop is None:
            return True
        due = self._due if self._due is not None else keyframe_time
        return keyframe_time + self._gop > due + self.max_lateness + _JITTER

    def _decode(self, packet: MediaPacket | av.Packet[Any]) -> list[VideoFrame]:
        raw = packet.to_av() if isinstance(packet, MediaPacket) else packet
        self.stats.decoded += 1
        try:
            return [f for f in self._decoder.decode(raw) if isinstance(f, VideoFrame)]
        except av.error.FFmpegError as exc:
            # A damaged packet costs its picture; the decoder conceals what it can.
            logger.debug("packet did not decode: %s", exc)
            return []

    def _stop_decoding(self) -> None:
        # Drop the chain: the next packet fed will be a keyframe, and a fresh decoder
        # keeps frames of the old chain from coming out late.
        self._decoding = False
        self._decoder = self._new_decoder()

    def _sample(self, frame: VideoFrame, time: float, wallclock: float | None) -> SampledFrame:
        width = min(self.width, frame.width)
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        small = frame.reformat(width=width, height=height, format="bgr24")
        self.stats.samples += 1
        image = np.asarray(small.to_ndarray(), np.uint8)
        return SampledFrame(time, image, wallclock, (frame.width, frame.height))

    def _new_decoder(self) -> Any:
        decoder = av.CodecContext.create(self._codec, "r")
        if self._extradata:
            decoder.extradata = self._extradata
        # One thread: frames come out of the packet that completes them, with no frame
        # threading delay, and a sample costs one core-slice, not two.
        decoder.thread_count = 1
        if self._fast:
            # No deblocking: about 20 % less decode work; the blockiness it leaves at camera
            # bitrates does not matter to a downscaled analysis frame.
            decoder.options = {"skip_loop_filter": "all"}
        return decoder
