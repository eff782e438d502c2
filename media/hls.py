"""HlsRecorder: writes an ingest's packets into ~6 s MPEG-TS segments, without re-encoding.

A packet sink (see ``media.ingest.PacketSink``): ``on_packet`` only enqueues; a thread
of the recorder's own muxes into ``seg_<sequence>.ts`` files with PyAV and reports each
closed segment. Playlist rendering lives in ``media.playlist`` and is re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

from media.audio import AUDIO_CODECS, AudioInfo
from media.bitreader import BitstreamError
from media.h264 import NAL_SPS, nal_type, parse_sps, split_annexb
from media.hls_audio import SegmentAudio
from media.packet import MediaPacket
from media.playlist import is_discontinuous, live_playlist, vod_playlist
from media.threads import run_in_daemon_thread
from media.timeline import ContinuousTimeline

__all__ = [
    "HlsRecorder",
    "SegmentInfo",
    "is_discontinuous",
    "live_playlist",
    "vod_playlist",
]

logger = logging.getLogger(__name__)

# A step this large between packets (in timestamps or arrival time) is a source restart or
# stall, not a frame interval: the segment is closed there and the next one marked.
MAX_PACKET_GAP = 2.0


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A closed segment file; ``start``/``end`` are UTC wall-clock times."""

    sequence: int
    filename: str
    path: Path
    start: datetime
    end: datetime
    duration: float  # seconds, from the packets' timestamps
    size: int  # bytes
    discontinuity: bool  # does not continue the previous segment (source restart, gap)


SegmentCallback = Callable[[SegmentInfo], None]
# Called on the recorder thread when writing starts failing (the reason, e.g. "No space
# left on device") and with None when a segment is written again.
FailureCallback = Callable[[str | None], None]

# After a failed write, the next attempt waits this long (then starts at a keyframe).
RETRY_AFTER_FAILURE_S = 2.0


@dataclass(slots=True)
class _OpenSegment:
    sequence: int
    path: Path
    container: OutputContainer
    stream: Stream
    first_pts: Fraction  # seconds
    last_pts: Fraction
    wallclock_start: float
    discontinuity: bool
    audio: Stream | None = None


class HlsRecorder:
    """Cuts segments at the first keyframe once ``target_duration`` seconds are reached.

    ``on_segment`` is called on the recorder thread for every closed segment; hand off to
    the event loop (``call_soon_threadsafe``) for anything async. The queue between
    ``on_packet`` and the writer is bounded: when full, packets are dropped (counted in
    ``dropped``) up to the next keyframe, so the ingest thread never waits on the disk.
    Timestamps in the files only ever increase, across source reconnects included.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        target_duration: float = 6.0,
        start_sequence: int = 0,
        on_segment: SegmentCallback | None = None,
        queue_size: int = 1024,
        on_failure: FailureCallback | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.target_duration = Fraction(target_duration)
        self.on_segment = on_segment
        self.on_failure = on_failure
        self.failure: str | None = None  # why writing fails now (disk full…), None if fine
        self.lost = 0  # packets not recorded because writing failed
        self._retry_at = 0.0
        self.next_sequence = start_sequence
        self.dropped = 0
        self._queue: queue.Queue[MediaPacket | None] = queue.Queue(maxsize=queue_size)
        self._dropping = False
        self._thread: threading.Thread | None = None
        self._segment: _OpenSegment | None = None
        self._previous: MediaPacket | None = None
        self._timeline = ContinuousTimeline()
        self._pending_discontinuity = False
        self._frame_step = Fraction(0)  # last positive pts step, to close a segment's end
        self._audio_info: Callable[[], AudioInfo | None] = lambda: None
        self._audio = SegmentAudio()
        self.audio_sink = _AudioSink(self)

    def set_audio(self, info: Callable[[], AudioInfo | None]) -> None:
        """Where to read the camera's audio track (e.g. ``lambda: ingest.audio_info``, None:
        no audio, as of the last connection); segments opened from then on carry it."""
        self._audio_info = info

    def start(self) -> None:
        """Create the directory and start the writer thread."""
        if self._thread is not None:
            raise RuntimeError("recorder already started")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._write_loop, name=f"hls {self.directory.name}", daemon=True
        )
        self._thread.start()

    def on_packet(self, packet: MediaPacket) -> None:
        """Enqueue a packet (called on the ingest thread; never blocks)."""
        if self._dropping and not packet.is_keyframe:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(packet)
            self._dropping = False
        except queue.Full:
            self.dropped += 1
            if not self._dropping:
                logger.warning("HLS queue full in %s; dropping to next keyframe", self.directory)
            self._dropping = True

    @property
    def backlog(self) -> int:
        """Packets queued and not yet written."""
        return self._queue.qsize()

    def close(self) -> None:
        """Write what is queued, close the last segment (reported too), end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)  # may wait for room; the writer is draining
        thread.join()

    async def stop(self) -> None:
        """``close()`` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        await run_in_daemon_thread(loop, "hls-close", self.close)

    # -- writer thread --------------------------------------------------------------

    def _write_loop(self) -> None:
        while (packet := self._queue.get()) is not None:
            if self.failure is not None and time.monotonic() < self._retry_at:
                self.lost += 1
                continue
            try:
                self._write(packet)
            except Exception as exc:
                # A failed write (disk full, muxer error) loses this segment, not the
                # recorder: abandon it (its file is removed, it is never indexed) and try
                # again at a keyframe after a pause; said once, not for every attempt.
                self._abandon()
                self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
                self._failed(exc)
        with contextlib.suppress(Exception):
            self._finish(None)

    def _failed(self, exc: Exception) -> None:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)
        if self.failure == reason:
            logger.debug("HLS write in %s still failing: %s", self.directory, reason)
            return
        logger.warning("HLS recording in %s stopped: %s; retrying every %g s", self.directory,
                       reason, RETRY_AFTER_FAILURE_S)
        self.failure = reason
        if self.on_failure is not None:
            self.on_failure(reason)

    def _recovered(self) -> None:
        if self.failure is None:
            return
        logger.warning("HLS recording in %s resumed", self.directory)
        self.failure = None
        if self.on_failure is not None:
            self.on_failure(None)

    def _write(self, packet: MediaPacket) -> None:
        if packet.codec in AUDIO_CODECS:
            self._audio.write(self._segment, packet, self._audio_info())
            return
        # The ingest marks reconnects; a long silence without one is treated alike.
        if packet.discontinuity or (
            self._previous is not None and self._is_gap(self._previous, packet)
        ):
            self._finish(None)
            self._pending_discontinuity = True
            self._audio.reset()
        self._previous = packet
        if self._segment is None and not packet.is_keyframe:
            return  # a segment must start with a keyframe
        packet = self._timeline.rebase(packet)
        pts = packet.pts * packet.time_base
        segment = self._segment
        if packet.is_keyframe and (
            segment is None or pts - segment.first_pts >= self.target_duration
        ):
            self._finish(pts)
            segment = self._open(packet, pts)
        assert segment is not None
        self._audio.anchor(pts, packet.wallclock)
        if pts > segment.last_pts:
            self._frame_step = pts - segment.last_pts
            segment.last_pts = pts
        av_packet = packet.to_av()
        av_packet.stream = segment.stream
        segment.container.mux(av_packet)

    @staticmethod
    def _is_gap(previous: MediaPacket, packet: MediaPacket) -> bool:
        step = (packet.decode_ts * packet.time_base) - (previous.decode_ts * previous.time_base)
        wall_step = packet.wallclock - previous.wallclock
        return step <= 0 or step > MAX_PACKET_GAP or wall_step > MAX_PACKET_GAP

    def _open(self, keyframe: MediaPacket, pts: Fraction) -> _OpenSegment:
        sequence = self.next_sequence
        self.next_sequence += 1
        path = self.directory / f"seg_{sequence}.ts"
        container = av.open(str(path), "w", format="mpegts")
        width, height = _picture_size(keyframe)
        # Passthrough in every codec: H.265 goes into MPEG-TS as H.264 does (docs/codecs.md).
        stream = container.add_mux_stream(keyframe.codec, width=width, height=height)
        stream.time_base = keyframe.time_base
        audio = self._audio.add_stream(container, self._audio_info())
        self._segment = _OpenSegment(
            sequence=sequence,
            path=path,
            container=container,
            stream=stream,
            first_pts=pts,
            last_pts=pts,
            wallclock_start=keyframe.wallclock,
            discontinuity=self._pending_discontinuity,
            audio=audio,
        )
        self._pending_discontinuity = False
        return self._segment

    def _finish(self, next_pts: Fraction | None) -> None:
        """Close the open segment; it ends at ``next_pts`` or one frame after its last."""
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            segment.container.close()
        except Exception:
            segment.path.unlink(missing_ok=True)  # a truncated file is never indexed
            self._pending_discontinuity = True
            raise
        end_pts = next_pts if next_pts is not None else segment.last_pts + self._frame_step
        duration = float(end_pts - segment.first_pts)
        start = datetime.fromtimestamp(segment.wallclock_start, UTC)
        info = SegmentInfo(
            sequence=segment.sequence,
            filename=segment.path.name,
            path=segment.path,
            start=start,
            end=start + timedelta(seconds=duration),
            duration=duration,
            size=segment.path.stat().st_size,
            discontinuity=segment.discontinuity,
        )
        logger.info("HLS segment %s: %.3f s, %d bytes", info.filename, duration, info.size)
        self._recovered()
        if self.on_segment is not None:
            try:
                self.on_segment(info)
            except Exception:
                logger.exception("on_segment callback failed for %s", info.filename)

    def _abandon(self) -> None:
        segment, self._segment = self._segment, None
        self._pending_discontinuity = True
        if segment is not None:
            try:
                segment.container.close()
            except Exception:
                logger.debug("closing the failed segment also failed", exc_info=True)
            segment.path.unlink(missing_ok=True)


class _AudioSink:
    """The recorder as an audio sink of the ingest (``RtspIngest.add_audio_sink``)."""

    def __init__(self, recorder: HlsRecorder) -> None:
        self._recorder = recorder

    def on_packet(self, packet: MediaPacket) -> None:
        """Enqueue an audio packet; dropped when the queue is full."""
        try:
            self._recorder._queue.put_nowait(packet)
        except queue.Full:
            self._recorder.dropped += 1


def _picture_size(keyframe: MediaPacket) -> tuple[int, int]:
    """Width and height from the keyframe's in-band SPS (the ingest guarantees one); 0, 0
    for H.265, whose size the MPEG-TS muxer does not need."""
    if keyframe.codec != "h264":
        return 0, 0
    for nal in split_annexb(keyframe.data):
        if nal_type(nal) == NAL_SPS:
            try:
                sps = parse_sps(nal)
            except BitstreamError:
                break
            return sps.width, sps.height
    return 0, 0
