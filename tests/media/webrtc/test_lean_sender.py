"""The lean send path seen from the wire: one SSRC and gapless sequence numbers across the
GOP-cache burst, keyframe requests answered from the GOP cache, recovery from a loss that
retransmission cannot repair."""

from __future__ import annotations

import asyncio
import errno
import itertools
from collections.abc import Callable

import pytest
from aioice import Connection

from media.webrtc import lean_sender
from tests.media.webrtc.clip import FPS, GOP, Stream
from tests.media.webrtc.conftest import OpenConsumer
from tests.media.webrtc.ortc_client import OrtcClient

pytestmark = pytest.mark.asyncio

Header = tuple[int, int, int, bool]  # ssrc, sequence number, timestamp, marker


def tap(client: OrtcClient, drop: Callable[[int], bool] = lambda _: False) -> list[Header]:
    """Record the clear RTP header of every SRTP packet the client receives (before it
    decrypts them), dropping those `drop(seq)` says the network loses."""
    seen: list[Header] = []
    original = client.ice._recv

    async def recv() -> bytes:
        while True:
            data = await original()
            if 127 < data[0] < 192 and not 192 <= data[1] <= 223:  # SRTP, not SRTCP
                seq = int.from_bytes(data[2:4], "big")
                seen.append((int.from_bytes(data[8:12], "big"), seq,
                             int.from_bytes(data[4:8], "big"), bool(data[1] & 0x80)))
                if drop(seq):
                    continue
            return data

    client.ice._recv = recv  # type: ignore[method-assign]
    return seen


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def mid_gop(stream: Stream) -> None:
    """Wait until the camera is well inside a GOP, far from its next keyframe."""
    await until(lambda: GOP // 6 <= stream.camera.sent % GOP <= GOP // 3, timeout=3 * GOP / FPS)


@pytest.mark.parametrize("segmentation", [True, False], ids=["udp-gso", "sendto-each"])
async def test_one_ssrc_and_gapless_sequence_across_the_gop_cache_burst(
    stream: Stream, open_consumer: OpenConsumer, monkeypatch: pytest.MonkeyPatch,
    segmentation: bool,
) -> None:
    # Both ways out of the sender: runs of packets cut by the kernel (UDP_SEGMENT), and one
    # `sendto` per packet (a kernel or path without segmentation offload).
    monkeypatch.setattr(lean_sender, "_gso", segmentation)
    runs: list[int] = []  # packets per system call
    flush = lean_sender._flush

    def counting_flush(udp: object, addr: tuple[str, int], end: int, segment: int,
                       buffered: int) -> None:
        runs.append(-(-end // segment) if lean_sender._gso and not buffered else 1)
        flush(udp, addr, end, segment, buffered)

    monkeypatch.setattr(lean_sender, "_flush", counting_flush)
    await mid_gop(stream)
    # Tap every ICE connection before the client starts, so the burst's first packet is seen
    # (the server's receives only SRTCP, which the tap ignores).
    seen: list[Header] = []
    original = Connection.recv

    async def recv(self: Connection) -> bytes:
        data = await original(self)
        if 127 < data[0] < 192 and not 192 <= data[1] <= 223:
            seen.append((int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big"),
                         int.from_bytes(data[4:8], "big"), bool(data[1] & 0x80)))
        return data

    monkeypatch.setattr(Connection, "recv", recv)
    consumer = await open_consumer(stream)
    primed = consumer.transport.track.primed_packets
    assert primed >= GOP // 6  # the burst carries the cached frames
    await consumer.client.wait_frames(primed + FPS)
    headers = list(seen)
    assert {h[0] for h in headers} == {consumer.rtp_parameters["encodings"][0]["ssrc"]}
    seqs = [h[1] for h in headers]
    assert all(b == (a + 1) & 0xFFFF for a, b in itertools.pairwise(seqs)), seqs[:50]
    timestamps = [h[2] for h in headers]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(timestamps))
    # A marker closes each frame: the timestamp only changes after a marked packet.
    for (_, _, ts_a, marker_a), (_, _, ts_b, _) in itertools.pairwise(headers):
        assert (ts_a != ts_b) == marker_a
    # Every decoded frame follows the previous one: no frame lost across burst → live.
    indexes = [f.index for f in consumer.client.frames]
    assert all(b == (a + 1) % (2 * GOP) for a, b in itertools.pairwise(indexes)), indexes
    # Fragmented frames left in runs of several packets per call only when segmenting.
    assert (max(runs) > 1) is segmentation


async def test_a_pli_is_answered_with_the_cached_keyframe_at_once(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    consumer = await open_consumer(stream)
    client = consumer.client
    await client.wait_frames(10)
    await mid_gop(stream)
    track = consumer.transport.track
    before = len(client.frames)
    ssrc = consumer.rtp_parameters["encodings"][0]["ssrc"]
    await client.receiver._send_rtcp_pli(ssrc)
    await until(lambda: track.keyframe_answers == 1, timeout=1)
    # The viewer decodes the cached keyframe again, long before the camera's next one.
    await until(lambda: any(f.index % GOP == 0 for f in client.frames[before:]), timeout=0.5)
    assert stream.camera.sent % GOP >= GOP // 6 - 2  # the camera sent no keyframe meanwhile
    # Then live frames continue, on the same SSRC.
    count = len(client.frames)
    await client.wait_frames(count + FPS // 2, timeout=2)
    # A second request right away is not answered again (one GOP resend per second).
    await client.receiver._send_rtcp_pli(ssrc)
    await asyncio.sleep(0.2)
    assert track.keyframe_answers == 1


async def test_a_burst_loss_is_recovered_from_the_retransmission_buffer(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    """The network loses 12 packets in a row (several frames): the viewer's NACKs bring
    all of them back from the per-viewer history, and no frame is lost."""
    consumer = await open_consumer(stream)
    client = consumer.client
    await client.wait_frames(FPS // 2)
    lost: list[int] = []
    first_copies: set[int] = set()

    def drop(seq: int) -> bool:
        if seq in first_copies:
            return False  # a retransmission
        if len(lost) < 12:
            lost.append(seq)
            first_copies.add(seq)
            return True
        return False

    seen = tap(client, drop)
    start = len(client.frames)
    await client.wait_frames(start + FPS, timeout=5)
    sender = consumer.transport._sender
    assert len(lost) == 12 and all(b == (a + 1) & 0xFFFF for a, b in itertools.pairwise(lost))
    assert sender.retransmitted >= 12
    assert all(sum(1 for h in seen if h[1] == seq) >= 2 for seq in lost)  # each came again
    indexes = [f.index for f in client.frames]
    assert all(b == (a + 1) % (2 * GOP) for a, b in itertools.pairwise(indexes)), indexes
    assert consumer.transport.track.keyframe_answers == 0  # NACK sufficed, no PLI needed


class _RefusingSocket:
    """A socket whose kernel refuses UDP segmentation offload (`errno`), or whose buffer
    is full, and takes datagrams one by one."""

    def __init__(self, errno_: int) -> None:
        self.errno, self.sent = errno_, []

    def sendmsg(self, buffers: list[memoryview], ancillary: object, flags: int,
                addr: object) -> int:
        raise OSError(self.errno, "refused")

    def sendto(self, data: memoryview, addr: object) -> int:
        self.sent.append(bytes(data))
        return len(data)


class _Udp:
    def __init__(self, sock: _RefusingSocket) -> None:
        self._sock = sock

    def sendto(self, data: memoryview, addr: object) -> None:  # asyncio's, never reached
        raise AssertionError("the socket took every packet")


@pytest.mark.parametrize(("errno_", "gso_after"), [(errno.EIO, False), (errno.EAGAIN, True)],
                         ids=["no-offload", "buffer-full"])
def test_a_refused_run_goes_out_one_datagram_at_a_time(
    monkeypatch: pytest.MonkeyPatch, errno_: int, gso_after: bool
) -> None:
    monkeypatch.setattr(lean_sender, "_gso", True)
    packets = [bytes([n]) * 100 for n in range(3)] + [b"\xff" * 40]
    lean_sender._SCRATCH_VIEW[:340] = b"".join(packets)
    sock = _RefusingSocket(errno_)
    lean_sender._flush(_Udp(sock), ("127.0.0.1", 9), 340, 100, 0)
    assert sock.sent == packets  # the same datagrams, in order
    assert lean_sender._gso is gso_after  # only a kernel without offload turns it off
