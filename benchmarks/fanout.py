"""Benchmark: server CPU per WebRTC consumer for one forwarded H.264 stream.

    python -m benchmarks.fanout [--consumers 0 10 50] [--seconds 10] [--profile 25]

The server side (paced camera thread → GopCache → Fanout → ConsumerTransports) runs in
this process; the viewers run in a child process and do not decode (decoding costs far
more than forwarding and would hide it): each one is full ICE + DTLS + SRTP and counts
RTP packets and sequence gaps. Reports server CPU-seconds per second, the increment per
consumer over the run without consumers, and the loss seen by the viewers. All traffic
stays on 127.0.0.1. `--profile N` also prints the N functions of the server's event loop
thread with the most own time (cProfile, during the largest run; cProfile slows it down,
so read the shares, not the totals).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import multiprocessing as mp
import pstats
import random
import resource
import time
from fractions import Fraction
from multiprocessing.connection import Connection
from typing import Any

import av
import numpy as np
from aiortc import (
    RTCCertificate,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceCandidate,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)
from aiortc.rtcdtlstransport import RTCDtlsFingerprint
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from media.gop_cache import GopCache
from media.packet import MediaPacket
from media.webrtc.capabilities import (
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)
from media.webrtc.consumer_transport import ConsumerTransport
from media.webrtc.fanout import Fanout
from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings

FPS = 30
GOP = 60
SERVER = WebRtcSettings(announced_ips=("127.0.0.1",), port_min=45000, port_max=45999)
CLIENT = WebRtcSettings(announced_ips=("127.0.0.1",), port_min=46000, port_max=46999)


def encode_clip(seconds: int = 4, kbps: int = 2000) -> list[tuple[bytes, bool]]:
    """A 640x360 clip at about `kbps`, with noise so the encoder spends its bitrate."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 640, 360, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS)
    codec.bit_rate = kbps * 1000
    codec.options = {
        "profile": "baseline",
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:"
        f"vbv-maxrate={kbps}:vbv-bufsize={kbps}",
    }
    rng = np.random.default_rng(1)
    out: list[tuple[bytes, bool]] = []
    for i in range(seconds * FPS):
        img = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        img[:, :320] = ((np.arange(320) + 4 * i) % 256)[None, :, None]  # moving half, noisy half
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    return out


# --- viewers (child process) ----------------------------------------------------------


class CountingReceiver:
    """Stands in for RTCRtpReceiver: counts packets and sequence gaps, decodes nothing."""

    def __init__(self) -> None:
        self.packets = 0
        self.lost = 0
        self._last: int | None = None

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        if self._last is not None:
            gap = (packet.sequence_number - self._last) & 0xFFFF
            if 1 < gap < 0x8000:
                self.lost += gap - 1
        self._last = packet.sequence_number
        self.packets += 1

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        pass

    def _handle_disconnect(self) -> None:
        pass


async def viewer(params: dict[str, Any], rtp: dict[str, Any], pipe: Connection) -> Any:
    gatherer = RTCIceGatherer(iceServers=[])
    await gather_announced(gatherer._connection, CLIENT)
    gatherer._connection.ice_controlling = True
    ice = RTCIceTransport(gatherer)
    for c in params["ice_candidates"]:
        await ice.addRemoteCandidate(
            RTCIceCandidate(
                1, c["foundation"], c["address"], c["port"], c["priority"], "udp", "host"
            )
        )
    await ice.addRemoteCandidate(None)
    certificate = RTCCertificate.generateCertificate()
    dtls = RTCDtlsTransport(ice, [certificate])
    receiver = CountingReceiver()
    codec = rtp["codecs"][0]
    dtls._register_rtp_receiver(
        receiver,
        RTCRtpReceiveParameters(
            codecs=[RTCRtpCodecParameters("video/H264", 90000, payloadType=codec["payloadType"])],
            muxId=rtp["mid"],
        ),
    )
    sha256 = next(f for f in certificate.getFingerprints() if f.algorithm == "sha-256")
    pipe.send({"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": sha256.value}]})
    p = params["ice_parameters"]
    await ice.start(RTCIceParameters(p["usernameFragment"], p["password"], iceLite=True))
    dtls._set_role("client")
    fingerprints = [RTCDtlsFingerprint(**f) for f in params["dtls_parameters"]["fingerprints"]]
    await dtls.start(RTCDtlsParameters(fingerprints=fingerprints))
    return receiver, dtls, ice


def viewers_main(pipe: Connection) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        receivers: list[Any] = []
        while True:
            message = await loop.run_in_executor(None, pipe.recv)
            if message == "report":
                pipe.send([(r.packets, r.lost) for r, _, _ in receivers])
                continue
            if message == "stop":
                for _, dtls, ice in receivers:
                    await dtls.stop()
                    await ice.stop()
                return
            params, rtp = message
            receivers.append(await viewer(params, rtp, pipe))

    asyncio.run(run())


# --- server (this process) ------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(
    clip: list[tuple[bytes, bool]], consumers: int, seconds: float, profile: int = 0
) -> dict[str, Any]:
    gop_cache = GopCache()
    fanout = Fanout(gop_cache)
    stop = False

    def camera() -> None:
        start = time.monotonic()
        n = 0
        while not stop:
            delay = start + n / FPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data, key = clip[n % len(clip)]
            pkt = MediaPacket(data, n * 3000, n * 3000, Fraction(1, 90000), key, time.time())
            gop_cache.add(pkt)
            fanout.on_packet(pkt)
            n += 1

    loop = asyncio.get_running_loop()
    camera_done = loop.run_in_executor(None, camera)
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(target=viewers_main, args=(child,), daemon=True)
    process.start()
    transports: list[ConsumerTransport] = []
    try:
        router = router_rtp_capabilities("42e01f")
        client_caps = {
            "codecs": [dict(router["codecs"][0], parameters={"packetization-mode": 1})],
            "headerExtensions": router["headerExtensions"],
        }
        for _ in range(consumers):
            rtp = consumer_rtp_parameters(
                client_caps, router, ssrc=random_ssrc(), mid="0", cname="b"
            )
            transport = await ConsumerTransport.create(
                settings=SERVER, track=fanout.subscribe(), rtp_parameters=rtp
            )
            transports.append(transport)
            parent.send((transport.parameters(), rtp))
            transport.connect(await loop.run_in_executor(None, parent.recv))
            async with asyncio.timeout(30):  # the host may be busy
                assert await transport.wait_connected()
        await asyncio.sleep(2)  # let GOP bursts and handshakes settle

        parent.send("report")
        before = await loop.run_in_executor(None, parent.recv)
        profiler = cProfile.Profile() if profile else None
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
        cpu1, wall1 = cpu_seconds(), time.monotonic()
        parent.send("report")
        after = await loop.run_in_executor(None, parent.recv)
    finally:
        # Also on failure: a camera thread left running would hang the loop's shutdown.
        stop = True
        with contextlib.suppress(OSError):
            parent.send("stop")
        await camera_done
        for transport in transports:
            await transport.close()
        process.join(10)
    received = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    lost = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    report = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile)
        report = out.getvalue()
    return {
        "profile": report,
        "consumers": consumers,
        "cpu_per_s": (cpu1 - cpu0) / (wall1 - wall0),
        "packets_per_s_per_viewer": received / max(consumers, 1) / (wall1 - wall0),
        "loss": lost / max(received + lost, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, nargs="+", default=[0, 10, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the top N functions by own time for the largest run")
    args = parser.parse_args()
    random.seed(1)
    clip = encode_clip()
    kbps = sum(len(d) for d, _ in clip) * 8 / (len(clip) / FPS) / 1000
    print(f"clip: 640x360 {FPS} fps, GOP {GOP}, {kbps:.0f} kbit/s")
    baseline = None
    for n in args.consumers:
        profile = args.profile if n == max(args.consumers) else 0
        result = asyncio.run(measure(clip, n, args.seconds, profile))
        if baseline is None and n == 0:
            baseline = result["cpu_per_s"]
        per = (
            f", {(result['cpu_per_s'] - baseline) / n * 1000:.2f} ms CPU/s per consumer"
            if baseline is not None and n
            else ""
        )
        print(
            f"{n:4d} consumers: server {result['cpu_per_s'] * 1000:.0f} ms CPU/s{per}, "
            f"{result['packets_per_s_per_viewer']:.0f} pkt/s per viewer, "
            f"loss {result['loss'] * 100:.2f} %"
        )
        if result["profile"]:
            print(result["profile"])


if __name__ == "__main__":
    main()
