"""A fake ingest at the node's edge: `RtspIngest`'s interface (what `StreamPipeline` uses),
fed with real H.264 from libx264 instead of a camera. The camera's URL says how it behaves:
a path ending in `/timeout`, `/refused`, `/novideo` or `/unauthorized` fails to open with
the matching `media.errors` error; `/high` streams H.264 High profile; anything else opens
and streams constrained baseline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from fractions import Fraction

from core.settings import Settings
from media.errors import (
    NoVideoStream,
    SourceError,
    SourceTimeout,
    SourceUnauthorized,
    SourceUnreachable,
)
from media.gop_cache import GopCache
from media.h264 import parameter_sets_in, split_annexb
from media.ingest import IngestState, StateCallback
from media.metrics import IngestMetrics
from media.packet import MediaPacket, PacketSink
from media.rtsp_source import StreamInfo
from tests.media.conftest_media import encode_h264

FPS = 25
TIME_BASE = Fraction(1, 90000)
FAILURES: dict[str, type[SourceError]] = {
    "timeout": SourceTimeout, "refused": SourceUnreachable, "novideo": NoVideoStream,
    "unauthorized": SourceUnauthorized,
}
_ENCODED = encode_h264("baseline", 320, 240, frames=50, gop=25)
_HIGH = encode_h264("high", 320, 240, frames=50, gop=25, x264_params="bframes=0")


class FakeIngest:
    """One fake camera connection; `drop()` and `recover()` play a camera going away."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.gop_cache = GopCache()
        self.metrics = IngestMetrics()
        self.on_state: StateCallback | None = None
        self.sinks: list[PacketSink] = []
        self.delivered = 0
        self.stopped = False
        self._task: asyncio.Task[None] | None = None
        self._encoded = _HIGH if url.endswith("/high") else _ENCODED
        sets = parameter_sets_in(split_annexb(b"".join(self._encoded.packets[:1])))
        sps = sets.sps_info()
        self.info = StreamInfo(codec="h264", width=320, height=240, fps=float(FPS),
                               profile_level_id=sps.profile_level_id if sps else None,
                               extradata=b"", time_base=TIME_BASE, parameter_sets=sets)

    audio_info = None  # the fake camera sends no audio

    def add_sink(self, sink: PacketSink) -> None:
        self.sinks.append(sink)

    def add_audio_sink(self, sink: PacketSink) -> None:
        pass

    async def open(self) -> StreamInfo:
        failure = FAILURES.get(self.url.rsplit("/", 1)[-1])
        if failure is not None:
            error = failure(f"fake camera at {self.url}")
            self._report(IngestState.ERROR, error)
            raise error
        self.start()
        return self.info

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._feed())

    async def stop(self) -> None:
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._report(IngestState.STOPPED, None)

    def drop(self, reason: SourceError | None = None) -> None:
        """The camera goes away (the ingest would reconnect on its own)."""
        if self._task is not None:
            self._task.cancel()
        self.gop_cache.clear()
        self._report(IngestState.ERROR, reason or SourceError("source dropped: fake"))

    def recover(self) -> None:
        self.start()

    def _report(self, state: IngestState, failure: SourceError | None) -> None:
        if self.on_state is not None:
            self.on_state(state, failure)

    async def _feed(self) -> None:
        self._report(IngestState.LIVE, None)
        self.metrics.on_live()
        index = 0
        while True:
            encoded = self._encoded
            position = index % len(encoded.packets)
            packet = MediaPacket(
                data=encoded.packets[position], pts=index * 90000 // FPS, dts=None,
                time_base=TIME_BASE, is_keyframe=encoded.keyframes[position],
                wallclock=time.time())
            self.metrics.on_packet(packet)
            self.gop_cache.add(packet)
            for sink in self.sinks:
                sink.on_packet(packet)
            self.delivered += 1
            index += 1
            await asyncio.sleep(1 / FPS)


class FakeCameras:
    """The node's ingest factory: every ingest it made, newest last."""

    def __init__(self) -> None:
        self.made: list[FakeIngest] = []

    def __call__(self, url: str, transport: str, settings: Settings, name: str) -> FakeIngest:
        ingest = FakeIngest(url, name)
        self.made.append(ingest)
        return ingest
