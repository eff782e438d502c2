"""RtspIngest: one camera's demux loop, fanning packets out to sinks, reconnecting on its own.

A supervised component in the manner of aiortc's ``RTCRtpSender``: ``start()`` (or
``open()``) launches it, ``stop()`` ends it and awaits its exit. Every blocking PyAV call
runs on a thread owned by the ingest, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import av.error

from media.audio import AudioInfo
from media.conditioner import PacketConditioner
from media.errors import SourceError, SourceTimeout, redact_url
from media.gop_cache import GopCache
from media.metrics import IngestMetrics
from media.packet import MediaPacket, PacketSink
from media.rtsp_source import OpenedSource, RtspSettings, StreamInfo, Transport, open_source
from media.threads import run_in_daemon_thread

logger = logging.getLogger(__name__)


class IngestState(StrEnum):
    """Lifecycle of an ingest, as reported to ``on_state``."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    ERROR = "error"
    STOPPED = "stopped"


# A camera that returns must be picked up within seconds (peers such as MediaMTX retry a
# lost source every 5 s; VAS promises LIVE within 5 s of the return, open time included,
# on a loaded machine too); attempts are cheap, so the wait between them stays short.
BACKOFF_MAX_SECONDS = 2.0

# (state, failure): the classified reason with ERROR (a timeout, an unreachable or refusing
# camera, a camera without video, or a plain drop), None otherwise.
StateCallback = Callable[[IngestState, SourceError | None], None]
# Called before every connection attempt with the configured URL; returns the URL to open
# (e.g. pinned to a checked address) or raises SourceError (e.g. SourceRefused) to skip it.
Resolver = Callable[[str], str]
Loop = asyncio.AbstractEventLoop


class RtspIngest:
    """Demuxes one RTSP camera and fans its H.264 packets out, reconnecting with backoff.

    Sinks (and the GOP cache) can rely on: every packet has pts; the first packet after
    each (re)connect is a keyframe; every keyframe carries SPS/PPS; decode timestamps
    never go backwards, even across reconnects.

    ``on_state(state, failure)`` runs on the event loop that called ``start``/``open``;
    ``failure`` says why with ERROR (a :class:`SourceError` of the right kind).
    After the source drops, reconnection is tried after 1 s, then every 2 s
    (``backoff_max``) while it stays away; once the source is back the ingest reports
    ``LIVE`` by itself. Every successful connection resets the back-off, so each outage
    starts again at 1 s: a camera that returns is picked up within one ``backoff_max``
    plus its open time, however often it has dropped before.
    """

    def __init__(
        self,
        url: str,
        *,
        transport: Transport = "tcp",
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        gop_cache: GopCache | None = None,
        on_state: StateCallback | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        name: str | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self.url = url
        self.resolve = resolve
        self.settings = RtspSettings(
            transport=transport, open_timeout=open_timeout, read_timeout=read_timeout
        )
        self.gop_cache = gop_cache if gop_cache is not None else GopCache()
        self.metrics = IngestMetrics()
        self.on_state = on_state
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.name = name or redact_url(url)
        self._sinks: tuple[PacketSink, ...] = ()
        self._audio_sinks: tuple[PacketSink, ...] = ()
        self._audio_info: AudioInfo | None = None
        self._sinks_lock = threading.Lock()
        self._state = IngestState.IDLE
        self._reported_state = IngestState.IDLE
        self._waiters: list[tuple[frozenset[IngestState], asyncio.Future[IngestState]]] = []
        self._stream_info: StreamInfo | None = None
        self._conditioner = PacketConditioner()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> IngestState:
        """The current state, as last set by the ingest thread."""
        return self._state

    @property
    def stream_info(self) -> StreamInfo | None:
        """What the source sends, once it has been opened (refreshed at each reconnect)."""
        return self._stream_info

    @property
    def audio_info(self) -> AudioInfo | None:
        """The camera's audio track as of the last open (None: the camera sends none)."""
        return self._audio_info

    def add_audio_sink(self, sink: PacketSink) -> None:
        """Deliver the camera's audio packets to ``sink`` (never to the video sinks).

        Audio packets carry their codec (``media.audio.AUDIO_CODECS``), are all
        "keyframes", and are in their own time base; they bypass the conditioner and the
        GOP cache.
        """
        with self._sinks_lock:
            self._audio_sinks = (*self._audio_sinks, sink)

    def remove_audio_sink(self, sink: PacketSink) -> None:
        """Stop delivering audio to ``sink``."""
        with self._sinks_lock:
            self._audio_sinks = tuple(s for s in self._audio_sinks if s is not sink)

    def add_sink(self, sink: PacketSink) -> None:
        """Deliver packets to ``sink`` from the next packet on."""
        with self._sinks_lock:
            self._sinks = (*self._sinks, sink)

    def remove_sink(self, sink: PacketSink) -> None:
        """Stop delivering packets to ``sink``; unknown sinks are ignored."""
        with self._sinks_lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    # The timeout bounds a blocking FFmpeg call that asyncio.timeout could not interrupt.
    async def open(self, timeout: float | None = None) -> StreamInfo:  # noqa: ASYNC109
        """Open the source once; raise the classified :class:`SourceError` on failure.

        ``timeout`` (seconds, default the constructor's ``open_timeout``) bounds the open.
        On success the ingest runs on its own, as after ``start()``, with the container
        already open. On failure it is not running and its state is ``ERROR``; call
        ``start()`` to keep retrying in the background.
        """
        loop = self._prepare_run()
        name = f"rtsp-open {self.name}"
        connect = run_in_daemon_thread(loop, name, lambda: self._connect(timeout), _close_source)
        opened = await connect
        self._task = loop.create_task(self._supervise(loop, opened))
        return opened.info

    def start(self) -> None:
        """Run the connect/demux/reconnect loop in the background."""
        loop = self._prepare_run()
        self._task = loop.create_task(self._supervise(loop, None))

    async def stop(self) -> None:
        """Stop and wait for the ingest thread to exit.

        One frame interval on a live source; on a silent one the thread stays blocked in
        FFmpeg until its read (about 2 x ``read_timeout``) or its open times out.
        """
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_for_state(self, *states: IngestState) -> IngestState:
        """Wait until a state in ``states`` is reported on the event loop; return it.

        Every reported transition is seen, even ones the thread went through quickly
        (ERROR, then LIVE). Bound the wait with ``asyncio.timeout``.
        """
        if self._reported_state in states:
            return self._reported_state
        waiter: asyncio.Future[IngestState] = asyncio.get_running_loop().create_future()
        entry = (frozenset(states), waiter)
        self._waiters.append(entry)
        try:
            return await waiter
        finally:
            self._waiters.remove(entry)

    # -- event loop side -----------------------------------------------------------

    def _prepare_run(self) -> Loop:
        if self._task is not None:
            raise RuntimeError("ingest already running")
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        return self._loop

    async def _supervise(self, loop: Loop, opened: OpenedSource | None) -> None:
        future = run_in_daemon_thread(loop, f"rtsp-ingest {self.name}", lambda: self._run(opened))
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # Cancellation is the normal way to stop: the thread notices _stopping between
            # packets, or when its current blocking call times out.
            self._stopping.set()
            with contextlib.suppress(Exception):
                await future
        except Exception:
            logger.exception("ingest %s crashed", self.name)
        finally:
            self._set_state(IngestState.STOPPED, None)  # always signal exit

    def _set_state(self, state: IngestState, failure: SourceError | None) -> None:
        """Record a state change and report it on the event loop (from any thread)."""
        self._state = state
        if state is IngestState.ERROR:
            logger.warning("ingest %s: %s", self.name, failure)
        else:
            logger.info("ingest %s: %s", self.name, state.value)
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                self._loop.call_soon_threadsafe(self._report, state, failure)

    def _report(self, state: IngestState, failure: SourceError | None) -> None:
        self._reported_state = state
        for states, waiter in self._waiters:
            if state in states and not waiter.done():
                waiter.set_result(state)
        if self.on_state is not None:
            try:
                self.on_state(state, failure)
            except Exception:
                logger.exception("ingest %s: on_state callback failed", self.name)

    # -- ingest thread ----------------------------------------------------------------

    def _connect(self, timeout: float | None) -> OpenedSource:
        self._set_state(IngestState.CONNECTING, None)
        try:
            url = self.resolve(self.url) if self.resolve is not None else self.url
            opened = open_source(url, self.settings, timeout)
        except SourceError as exc:
            self.metrics.on_down(str(exc))
            self._set_state(IngestState.ERROR, exc)
            raise
        self._stream_info = opened.info
        self._audio_info = opened.audio_info
        info = opened.info
        self._conditioner.new_connection(info.parameter_sets, info.fps, info.codec,
                                         info.extradata)
        self.metrics.set_frame_rate(opened.info.fps)
        self.metrics.on_live()
        self._set_state(IngestState.LIVE, None)
        return opened

    def _run(self, opened: OpenedSource | None) -> None:
        backoff = self.backoff_initial
        try:
            while not self._stopping.is_set():
                if opened is None:
                    with contextlib.suppress(SourceError):  # already reported by _connect
                        opened = self._connect(None)
                if opened is not None:
                    # Connected: this outage is over, the next one starts afresh.
                    backoff = self.backoff_initial
                    _delivered, reason = self._pump_until_drop(opened)
                    opened = None
                    if self._stopping.is_set():
                        return
                    self.gop_cache.clear()  # its GOP predates the drop: nobody may start there
                    self.metrics.on_down(str(reason))
                    self._set_state(IngestState.ERROR, reason)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max)
        finally:
            if opened is not None:
                opened.container.close()
            self.gop_cache.clear()

    def _pump_until_drop(self, opened: OpenedSource) -> tuple[int, SourceError]:
        """Demux until the source ends or fails; return (packets delivered, reason)."""
        delivered = 0
        try:
            streams = [opened.stream] if opened.audio is None else [opened.stream, opened.audio]
            for av_packet in opened.container.demux(streams):
                if self._stopping.is_set():
                    break
                if av_packet.size == 0:
                    continue  # the end-of-stream flush packet
                if av_packet.stream is opened.audio:
                    self._deliver_audio(av_packet, opened)
                    continue
                if av_packet.pts is None:
                    data, keyframe = bytes(av_packet), av_packet.is_keyframe
                    self._conditioner.hold_untimed(data, keyframe, time.time())
                    continue
                arrival = time.monotonic()
                packet = MediaPacket.from_av(av_packet, time.time())
                self.metrics.on_packet(packet, arrival)
                for ready in self._conditioner.condition(packet):
                    self._deliver(ready)
                    delivered += 1
            return delivered, SourceError("source ended the stream")
        except (av.error.ExitError, TimeoutError):
            # PyAV's read timeout (ExitError) or FFmpeg's socket timeout (ETIMEDOUT).
            stalled = f"source stalled: no data for {self.settings.read_timeout:g} s"
            return delivered, SourceTimeout(stalled)
        except (av.error.FFmpegError, OSError) as exc:
            # Connection loss is normal for a camera: report it without a traceback.
            return delivered, SourceError(f"source dropped: {exc.strerror or type(exc).__name__}")
        except Exception as exc:
            logger.exception("ingest %s: unexpected error while demuxing", self.name)
            return delivered, SourceError(f"ingest error: {type(exc).__name__}")
        finally:
            opened.container.close()

    def _deliver_audio(self, av_packet: Any, opened: OpenedSource) -> None:
        packet = _audio_packet(av_packet, opened)
        if packet is None:
            return
        for sink in self._audio_sinks:
            try:
                sink.on_packet(packet)
            except Exception:
                logger.exception("ingest %s: audio sink %r failed", self.name, sink)

    def _deliver(self, packet: MediaPacket) -> None:
        self.gop_cache.add(packet)
        for sink in self._sinks:
            try:
                sink.on_packet(packet)
            except Exception:
                logger.exception("ingest %s: sink %r failed", self.name, sink)


def _audio_packet(av_packet: Any, opened: OpenedSource) -> MediaPacket | None:
    info = opened.audio_info
    if info is None or av_packet.pts is None or av_packet.time_base is None:
        return None
    return MediaPacket(data=bytes(av_packet), pts=av_packet.pts, dts=av_packet.pts,
                       time_base=av_packet.time_base, is_keyframe=True,
                       wallclock=time.time(), codec=info.codec)


def _close_source(opened: OpenedSource) -> None:
    opened.container.close()
