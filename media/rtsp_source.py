"""Opening an RTSP source with PyAV: options, stream selection, StreamInfo.

Blocking: call from a worker thread, never from the event loop.

FFmpeg 8 (PyAV 18) options, checked against a real GStreamer RTSP server and a server
that accepts TCP and never answers:

- ``timeout`` (microseconds) is the rtsp demuxer's socket I/O timeout; it bounds the
  handshake (a silent server fails after ``timeout``) and reads (a stalled stream fails
  after about twice ``timeout``: the demuxer waits once more for an RTSP reply). It is set
  to the *open* timeout: a camera on a slow network may take longer than the read timeout
  to answer its first request, and must still open. Stalled reads are bounded by PyAV's
  read timeout below, not by this one.
- ``stimeout`` no longer exists (removed in FFmpeg 5) and ``rw_timeout`` does not apply
  to rtsp (the demuxer does its own I/O): with either alone, a silent server hangs.
- PyAV's own ``timeout=(open, read)`` interrupts blocking calls from FFmpeg's interrupt
  callback; it is set as well, so the open is bounded even if a server trickles bytes.
- ``probesize=32`` stops stream probing after the first packet: the picture size comes
  from the SDP's sprop-parameter-sets, so probing more only delays the start (at
  15 fps, 0.18 s to open instead of 0.64 s with probesize 32768 and 2.0 s by default).
  ``analyzeduration=0`` would mean "the default, 5 s" to FFmpeg, hence a small value.
- ``protocol_whitelist`` is ``rtsp,rtsps,rtp,tcp,udp,tls``: what RTSP needs (TCP
  interleaved: rtsp+tcp; UDP: rtp+udp beside the rtsp/tcp control connection; rtsps: tls).
  Checked with FFmpeg 8 / PyAV 18: the test camera opens over TCP and UDP with it, while
  ``http:``, ``file:`` and the like are refused before anything is read, so a camera URL
  can never reach a file, a pipe, a playlist or HTTP through FFmpeg.
- ``fflags=nobuffer`` is not set: it discards the packets read while probing, and with
  ``probesize=32`` that is exactly the first frame, which is often the keyframe a camera
  starts the session with. Measured: first keyframe 0.25 s after the open began without
  it, 1.2 s with it (a whole 1 s GOP later); with probesize 32 it saves no latency.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import av
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.stream import VideoStream

from media.audio import AudioInfo, describe_audio, select_audio_stream
from media.bitreader import BitstreamError
from media.errors import NoVideoStream, SourceError, classify_open_error, redact_url
from media.h264 import ParameterSets, parameter_sets

logger = logging.getLogger(__name__)

Transport = Literal["tcp", "udp"]

# Every protocol RTSP needs, and nothing else (see the module docstring).
PROTOCOL_WHITELIST = "rtsp,rtsps,rtp,tcp,udp,tls"

# The video codecs a camera may send (FFmpeg's names), in order of preference when a camera
# offers several: H.264, H.265, MJPEG (docs/codecs.md).
VIDEO_CODECS = ("h264", "hevc", "mjpeg")


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the source's video stream is, as learned when it was opened."""

    codec: str
    width: int
    height: int
    fps: float | None
    profile_level_id: str | None
    extradata: bytes
    time_base: Fraction
    parameter_sets: ParameterSets = field(default_factory=ParameterSets)


@dataclass(frozen=True, slots=True)
class RtspSettings:
    """How to open a source; the timeouts are in seconds."""

    transport: Transport = "tcp"
    open_timeout: float = 5.0
    read_timeout: float = 5.0
    probesize: int = 32
    analyzeduration_us: int = 100_000

    def av_options(self, open_timeout: float | None = None) -> dict[str, str]:
        """The FFmpeg demuxer options for ``av.open`` (``open_timeout`` overrides the
        settings' own)."""
        handshake = self.open_timeout if open_timeout is None else open_timeout
        return {
            "rtsp_transport": self.transport,
            "timeout": str(int(handshake * 1_000_000)),
            "probesize": str(self.probesize),
            "analyzeduration": str(self.analyzeduration_us),
            "fpsprobesize": "0",
            "protocol_whitelist": PROTOCOL_WHITELIST,
        }


@dataclass(slots=True)
class OpenedSource:
    """An open container, its selected video stream and what was learned about it."""

    container: InputContainer
    stream: VideoStream
    info: StreamInfo
    open_seconds: float
    #: The camera's audio track, when it sends one VAS takes (media.audio.AUDIO_CODECS).
    audio: AudioStream | None = None
    audio_info: AudioInfo | None = None


def open_source(
    url: str, settings: RtspSettings, open_timeout: float | None = None
) -> OpenedSource:
    """Open ``url`` and select its H.264 stream; raise a classified :class:`SourceError`.

    The PyAV exception is neither chained nor kept as context: its message holds the
    URL with credentials, and tracebacks end up in logs.
    """
    timeout = settings.open_timeout if open_timeout is None else open_timeout
    started = time.monotonic()
    container = _open_container(url, settings, timeout)
    if isinstance(container, SourceError):
        # Raised outside the except block so that not even __context__ keeps the PyAV
        # exception, whose message holds the URL with its credentials.
        raise container
    try:
        stream = select_video_stream(container, url)
        info = describe(stream)
        audio = select_audio_stream(list(container.streams.audio))
        audio_info = describe_audio(audio) if audio is not None else None
    except BaseException:
        container.close()
        raise
    elapsed = time.monotonic() - started
    logger.info(
        "opened %s in %.2f s: %s %dx%d %s fps, profile-level-id %s",
        redact_url(url),
        elapsed,
        info.codec,
        info.width,
        info.height,
        f"{info.fps:g}" if info.fps else "?",
        info.profile_level_id,
    )
    if audio_info is not None:
        logger.info("%s: audio %s %d Hz", redact_url(url), audio_info.codec,
                    audio_info.sample_rate)
    return OpenedSource(container=container, stream=stream, info=info, open_seconds=elapsed,
                        audio=audio, audio_info=audio_info)


def _open_container(
    url: str, settings: RtspSettings, timeout: float
) -> InputContainer | SourceError:
    started = time.monotonic()
    try:
        return av.open(url, options=settings.av_options(timeout),
                       timeout=(timeout, settings.read_timeout))
    except (av.error.FFmpegError, OSError) as exc:
        elapsed = time.monotonic() - started
        error = classify_open_error(exc, url, elapsed, timeout)
        logger.info(
            "open %s failed after %.2f s: %s (%s)",
            redact_url(url),
            elapsed,
            type(error).__name__,
            type(exc).__name__,
        )
        return error


def select_video_stream(container: InputContainer, url: str) -> VideoStream:
    """The first video stream of a codec VAS takes (H.264 first); NoVideoStream if none."""
    videos = list(container.streams.video)
    for codec in VIDEO_CODECS:
        for stream in videos:
            if stream.codec_context.name == codec:
                return stream
    if videos:
        names = ", ".join(stream.codec_context.name for stream in videos)
        raise NoVideoStream(f"{redact_url(url)}: video is {names}, not H.264, H.265 or MJPEG")
    kinds = ", ".join(stream.type for stream in container.streams) or "no streams"
    raise NoVideoStream(f"{redact_url(url)}: no video stream ({kinds})")


def describe(stream: VideoStream) -> StreamInfo:
    """Build StreamInfo from the demuxer's view, filled in from the SPS where it is silent."""
    context = stream.codec_context
    extradata = bytes(context.extradata or b"")
    sets = ParameterSets()
    if context.name == "h264":
        try:
            sets = parameter_sets(extradata)
        except BitstreamError:
            logger.warning("unusable extradata (%d bytes); relying on in-band SPS/PPS",
                           len(extradata))
    sps = sets.sps_info()
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else (sps.frame_rate if sps else None)
    if stream.time_base is None:
        raise SourceError("video stream has no time base")
    return StreamInfo(
        codec=context.name,
        width=context.width or (sps.width if sps else 0),
        height=context.height or (sps.height if sps else 0),
        fps=fps,
        profile_level_id=sps.profile_level_id if sps else None,
        extradata=extradata,
        time_base=stream.time_base,
        parameter_sets=sets,
    )
