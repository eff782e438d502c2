"""A WebRTC consumer of a VAS stream in Python, yielding decoded frames as numpy arrays.

Two ways in, same frames out:
- `mode="guide"`: the guide's mediasoup flow (router-capabilities → consume → connect),
  with aiortc's ORTC objects doing what a browser's recv transport does: full ICE as the
  controlling agent against VAS's ICE-lite transport, DTLS client, an H.264 receiver (and,
  with `audio=True`, a second consumer of `kind: audio` with an Opus receiver).
- `mode="whep"`: a plain `RTCPeerConnection` posting its offer to the stream's WHEP URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
from aiortc import (
    RTCCertificate,
    RTCConfiguration,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceCandidate,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsFingerprint
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from vas_client.gathering import gather_on
from vas_client.http import VasClient
from vas_client.transport_state import describe


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: `image` is an RGB uint8 array of shape (height, width, 3)."""

    image: np.ndarray[Any, np.dtype[np.uint8]]
    pts: int | None
    received_at: float  # time.time()

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """Decoded audio: ``samples`` int16 mono (the first channel), at ``sample_rate`` Hz."""

    samples: np.ndarray[Any, np.dtype[np.int16]]
    sample_rate: int
    pts: int | None
    received_at: float


def _loopback_ip(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return host
    return None


def _video_frame(frame: Any) -> Frame | None:
    if not isinstance(frame, av.VideoFrame):
        return None
    return Frame(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8), frame.pts,
                 time.time())


def _audio_frame(frame: Any) -> AudioFrame | None:
    """The first channel, int16."""
    if not isinstance(frame, av.AudioFrame):
        return None
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    mono = data[0] if frame.format.is_planar else data.reshape(-1)[::channels]
    return AudioFrame(np.asarray(mono, dtype=np.int16), frame.sample_rate, frame.pts,
                      time.time())


class StreamConsumer:
    """`async with StreamConsumer(client, stream_id) as c: async for frame in c.frames(): …`"""

    def __init__(self, client: VasClient, stream_id: str, *, mode: str = "guide",
                 client_name: str = "vas-python", local_ip: str | None = None,
                 max_buffered: int = 30, audio: bool = False) -> None:
        if mode not in ("guide", "whep"):
            raise ValueError("mode must be 'guide' or 'whep'")
        self.client = client
        self.stream_id = stream_id
        self.mode = mode
        self.client_name = client_name
        self.local_ip = local_ip or _loopback_ip(client.url)
        self.consumer_id: str | None = None
        #: Also receive the stream's audio (Opus; nothing when the camera sends none): see
        #: ``audio_frames``. In guide mode it is a consumer of its own, ``audio_consumer_id``.
        self.audio = audio
        self.audio_consumer_id: str | None = None
        self._audio: asyncio.Queue[AudioFrame | None] = asyncio.Queue(max_buffered * 5)
        self._audio_reader: asyncio.Task[None] | None = None
        self._frames: asyncio.Queue[Frame | None] = asyncio.Queue(max_buffered)
        self._reader: asyncio.Task[None] | None = None
        self._closers: list[Any] = []
        self._whep_location: str | None = None
        # What transport_state() reads (guide flow: the receiver; WHEP: the connection).
        self._receiver: RTCRtpReceiver | None = None
        self._pc: RTCPeerConnection | None = None
        self.dropped = 0

    async def __aenter__(self) -> StreamConsumer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.mode == "guide":
            await self._start_guide()
        else:
            await self._start_whep()

    async def frames(self, limit: int | None = None) -> AsyncIterator[Frame]:
        """Decoded frames as they arrive (the oldest are dropped if you fall behind)."""
        count = 0
        while limit is None or count < limit:
            frame = await self._frames.get()
            if frame is None:
                return
            count += 1
            yield frame

    async def audio_frames(self, limit: int | None = None) -> AsyncIterator[AudioFrame]:
        """Decoded audio frames (``audio=True``) as they arrive; the oldest are dropped if
        you fall behind."""
        count = 0
        while limit is None or count < limit:
            frame = await self._audio.get()
            if frame is None:
                return
            count += 1
            yield frame

    async def close(self) -> None:
        """Detach from VAS (DELETE the consumer or WHEP session) and close locally."""
        detach = ([self._whep_location] if self._whep_location else [
            f"/v2/streams/{self.stream_id}/consumers/{consumer_id}"
            for consumer_id in (self.consumer_id, self.audio_consumer_id) if consumer_id])
        for url in detach:
            with contextlib.suppress(Exception):
                await self.client.request("DELETE", url)
        for reader in (self._reader, self._audio_reader):
            if reader is not None:
                reader.cancel()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        with contextlib.suppress(asyncio.QueueFull):
            self._frames.put_nowait(None)
        with contextlib.suppress(asyncio.QueueFull):
            self._audio.put_nowait(None)

    async def transport_state(self) -> dict[str, Any]:
        """Where this viewer's connection stands, to tell why frames stopped
        (`vas_client.transport_state.describe`)."""
        return await describe(self._pc, self._receiver, self._reader)

    # -- plumbing ------------------------------------------------------------------------

    async def _read(self, track: MediaStreamTrack) -> None:
        await self._pump(track, self._frames, _video_frame)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        await self._pump(track, self._audio, _audio_frame)

    async def _pump(self, track: MediaStreamTrack, frames: asyncio.Queue[Any],
                    convert: Any) -> None:
        """Decoded frames of ``track`` into ``frames`` (the oldest dropped when full)."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            item = convert(frame)
            if item is None:
                continue
            if frames.full():
                frames.get_nowait()
                if frames is self._frames:
                    self.dropped += 1
            frames.put_nowait(item)
        with contextlib.suppress(asyncio.QueueFull):
            frames.put_nowait(None)

    async def _start_guide(self) -> None:
        caps = (await self.client.json(
            "GET", f"/v2/streams/{self.stream_id}/router-capabilities"))["rtp_capabilities"]
        self._reader = asyncio.ensure_future(self._read(await self._consume(caps, "video")))
        # Opus is listed only when the camera sends audio.
        if self.audio and any(c.get("kind") == "audio" for c in caps["codecs"]):
            track = await self._consume(caps, "audio")
            self._audio_reader = asyncio.ensure_future(self._read_audio(track))

    async def _consume(self, caps: dict[str, Any], kind: str) -> MediaStreamTrack:
        """One consumer of the guide's flow (consume → connect): its receiver's track."""
        router_codec = next(c for c in caps["codecs"] if c.get("kind", "video") == kind)
        offer = {"codecs": [{**router_codec}], "headerExtensions": caps["headerExtensions"]}
        body: dict[str, Any] = {"client_id": self.client_name, "rtp_capabilities": offer}
        if kind != "video":
            body["kind"] = kind
        answer = await self.client.json(
            "POST", f"/v2/streams/{self.stream_id}/consume", json=body)
        consumer_id = answer["consumer_id"]
        if kind == "video":
            self.consumer_id = consumer_id
        else:
            self.audio_consumer_id = consumer_id
        transport, rtp = answer["transport"], answer["rtp_parameters"]

        gatherer = RTCIceGatherer(iceServers=[])
        if self.local_ip is not None:
            await gather_on(gatherer._connection, self.local_ip)
        gatherer._connection.ice_controlling = True
        ice = RTCIceTransport(gatherer)
        for c in transport["ice_candidates"]:
            await ice.addRemoteCandidate(RTCIceCandidate(
                component=1, foundation=c["foundation"], ip=c.get("address") or c["ip"],
                port=c["port"], priority=c["priority"], protocol=c["protocol"], type=c["type"]))
        await ice.addRemoteCandidate(None)
        certificate = RTCCertificate.generateCertificate()
        dtls = RTCDtlsTransport(ice, [certificate])
        receiver = RTCRtpReceiver(kind, dtls)
        receiver._track = RemoteStreamTrack(kind=kind)
        codec = rtp["codecs"][0]
        await receiver.receive(RTCRtpReceiveParameters(
            codecs=[RTCRtpCodecParameters(
                mimeType=codec["mimeType"], clockRate=codec["clockRate"],
                channels=codec.get("channels"),
                payloadType=codec["payloadType"], parameters=codec.get("parameters", {}),
                rtcpFeedback=[RTCRtcpFeedback(type=f["type"], parameter=f.get("parameter") or None)
                              for f in codec.get("rtcpFeedback", [])])],
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=e["id"], uri=e["uri"])
                              for e in rtp.get("headerExtensions", [])],
            muxId=rtp.get("mid", ""),
            rtcp=RTCRtcpParameters(cname=rtp.get("rtcp", {}).get("cname"), mux=True),
            encodings=[RTCRtpDecodingParameters(ssrc=rtp["encodings"][0]["ssrc"],
                                                payloadType=codec["payloadType"])],
        ))
        self._closers += [ice.stop, dtls.stop, receiver.stop]
        if kind == "video":  # what `transport_state()` describes
            self._receiver = receiver
        sha256 = next(f for f in certificate.getFingerprints() if f.algorithm == "sha-256")
        # As mediasoup-client's "connect" event: tell the server, then run ICE and DTLS.
        await self.client.json(
            "POST", f"/v2/streams/{self.stream_id}/consumers/{consumer_id}/connect",
            json={"dtls_parameters": {"role": "client", "fingerprints": [
                {"algorithm": "sha-256", "value": sha256.value}]}})
        params = transport["ice_parameters"]
        await ice.start(RTCIceParameters(usernameFragment=params["usernameFragment"],
                                         password=params["password"],
                                         iceLite=params.get("iceLite", True)))
        dtls._set_role("client")
        await dtls.start(RTCDtlsParameters(fingerprints=[
            RTCDtlsFingerprint(algorithm=f["algorithm"], value=f["value"])
            for f in transport["dtls_parameters"]["fingerprints"]]))
        return receiver.track

    async def _start_whep(self) -> None:
        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._closers.append(pc.close)
        transceiver = pc.addTransceiver("video", direction="recvonly")
        if self.audio:
            pc.addTransceiver("audio", direction="recvonly")
        if self.local_ip is not None:
            await gather_on(transceiver.receiver.transport.transport._connection, self.local_ip)
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
        pc.on("track", tracks.put_nowait)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.client.request(
            "POST", f"/v2/streams/{self.stream_id}/whep", content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp"})
        self._whep_location = answer.headers["location"]
        self.consumer_id = self._whep_location.rsplit("/", 1)[1]
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
        # aiortc announces the answer's tracks during setRemoteDescription: an audio one
        # only when VAS sends audio (the camera has some).
        while self._reader is None:
            track = await asyncio.wait_for(tracks.get(), 10)
            if track.kind == "video":
                self._reader = asyncio.ensure_future(self._read(track))
            elif self._audio_reader is None:
                self._audio_reader = asyncio.ensure_future(self._read_audio(track))
        if self.audio and self._audio_reader is None and not tracks.empty():
            self._audio_reader = asyncio.ensure_future(self._read_audio(tracks.get_nowait()))


class SyncStreamConsumer:
    """The same consumer for plain scripts and notebooks: a loop runs in a thread.

    `with SyncStreamConsumer(stream_id=…) as c: for frame in c.frames(50): …`
    """

    def __init__(self, stream_id: str, *, url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, mode: str = "guide") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="vas-consumer")
        self._thread.start()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=60)
        self._args = (stream_id, url, client_id, client_secret, mode)
        self._consumer: StreamConsumer | None = None
        self._client: VasClient | None = None
        self._pump: Any = None

    def _run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> SyncStreamConsumer:
        stream_id, url, client_id, client_secret, mode = self._args

        async def start() -> None:
            self._client = VasClient(url, client_id, client_secret)
            self._consumer = StreamConsumer(self._client, stream_id, mode=mode)
            await self._consumer.start()
            self._pump = asyncio.ensure_future(self._forward())

        self._run(start())
        return self

    async def _forward(self) -> None:
        assert self._consumer is not None
        async for frame in self._consumer.frames():
            if self._queue.full():
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
            self._queue.put_nowait(frame)
        self._queue.put(None)

    def frames(self, limit: int | None = None, timeout: float = 10.0) -> Iterator[Frame]:
        """Up to `limit` decoded frames; stops when none arrives within `timeout` s."""
        count = 0
        while limit is None or count < limit:
            try:
                frame = self._queue.get(timeout=timeout)
            except queue.Empty:
                return
            if frame is None:
                return
            count += 1
            yield frame

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            if self._consumer is not None:
                await self._consumer.close()
            if self._pump is not None:
                self._pump.cancel()
            if self._client is not None:
                await self._client.aclose()

        try:
            self._run(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
