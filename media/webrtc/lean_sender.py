"""The per-viewer send path: RTP header, SRTP protect, send — and the viewer's RTCP.

aiortc's `RTCRtpSender` runs a task per viewer that awaits its track, packetizes every
access unit again, builds an `RtpPacket` object per packet and serializes it. Here the
payloads come packetized once per stream (`RtpFrame`) and `send_frame()` is a plain call
made by the fan-out in the same loop turn: per packet only a 12-byte header (+ the
negotiated extensions, built once per frame) and one libsrtp `protect`; the packets of a
frame leave in one `sendmsg` per run of equal-sized packets (UDP segmentation offload).

`LeanSender` subclasses `RTCRtpSender` only so that it can stand where aiortc expects a
sender: a `ConsumerTransport` builds it directly; a WHEP/server-offer peer connection gets
it swapped into its transceiver (`install()`), so `RTCPeerConnection` calls its `send()` with
the negotiated parameters and routes RTCP to it. None of the base class's tasks run.

Private aiortc API used (aiortc is pinned to 1.16.x in pyproject.toml): the DTLS
transport's `_tx_srtp` (the pylibsrtp `Session` keyed by the DTLS-SRTP exporter, with
`allow_repeat_tx`, so a retransmission is the stored protected packet sent again),
`_register_rtp_sender`/`_unregister_rtp_sender` (RTCP routing by SSRC), the ICE
transport's `_connection._nominated` (the selected pair's socket and address), and
`RTCRtpTransceiver`'s `__sender` slot; of pylibsrtp 1.0 (locked in requirements.lock),
its cffi binding and the `Session`'s `srtp_t`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)
from pylibsrtp._binding import ffi as _ffi  # type: ignore[import-not-found]
from pylibsrtp._binding import lib as _lib

from media.webrtc.packet_track import PacketTrack
from media.webrtc.rtp_frame import RtpFrame

logger = logging.getLogger(__name__)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
# Retransmission buffer: the last 512 packets sent (about 2 s at 2 Mbit/s, enough for the
# GOP-cache burst), protected, indexed by sequence number modulo its size.
HISTORY_SIZE = 512
# Bytes the viewer's socket may hold unsent (asyncio buffers what the kernel refused)
# before the viewer counts as too slow and skips to the next keyframe.
MAX_BUFFERED_BYTES = 512 * 1024

_HEADER = struct.Struct("!BBHII")
_srtp_protect = _lib.srtp_protect
# The scratch buffer where every sender assembles and protects a run of packets. One per
# process is enough: `send_frame` runs to its end without yielding to the event loop.
# UDP segmentation offload takes at most 64 segments and one datagram's size in all.
_MAX_SEGMENTS = 64
_SCRATCH_SIZE = 65000
_SRTP_TRAILER = 16  # libsrtp's authentication tag and MKI, at most (10 with the default)
_SCRATCH = _ffi.new("char[]", _SCRATCH_SIZE)
_SCRATCH_BYTES = _ffi.buffer(_SCRATCH)  # a slice of it is a copy (bytes)
_SCRATCH_VIEW = memoryview(_SCRATCH_BYTES)  # a slice of it is not
_SOL_UDP = getattr(socket, "SOL_UDP", 17)
_UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)  # Linux ≥ 4.18; Python 3.12 names it
_U16 = struct.Struct("=H")
# What a kernel or a path without segmentation offload answers; then every packet goes
# out by its own `sendto` for the rest of the process's life.
_NO_GSO = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
_gso = sys.platform == "linux"


def _flush(udp: Any, addr: tuple[str, int], end: int, segment: int, buffered: int) -> None:
    """Send the scratch buffer's packets up to `end`, each `segment` bytes (the last may be
    shorter): one system call for all of them when the kernel cuts them (UDP_SEGMENT)."""
    global _gso  # learnt once per process
    data = _SCRATCH_VIEW[:end]
    if segment < end and _gso and not buffered:
        try:
            udp._sock.sendmsg([data], [(_SOL_UDP, _UDP_SEGMENT, _U16.pack(segment))], 0, addr)
            return
        except OSError as exc:  # e.g. the kernel's buffer is full: one by one below, where
            # asyncio keeps what the kernel refuses and reports errors to the protocol
            if exc.errno in _NO_GSO:
                _gso = False
                logger.warning("UDP segmentation offload refused (%s): one sendto per packet",
                               exc)
    sendto = udp.sendto if buffered else udp._sock.sendto
    for start in range(0, end, segment):
        packet = data[start:start + segment]
        try:
            sendto(packet, addr)
        except OSError:  # would block, or an ICMP error: asyncio buffers or reports it
            sendto = udp.sendto
            sendto(packet, addr)
# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_OFFSET = 2208988800


def _ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (aiortc's `current_ntp_time` goes through
    `datetime`, three times slower; this runs once per frame per viewer)."""
    return int((time.time() + _NTP_OFFSET) * (1 << 32))


class LeanSender(RTCRtpSender):
    """Sends a `PacketTrack`'s frames to one viewer and answers its RTCP.

    `on_rtcp` is called for each RTCP packet from the viewer (proof that it is alive).
    """

    def __init__(
        self,
        track: PacketTrack,
        transport: RTCDtlsTransport,
        on_rtcp: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(track, transport)
        self._lean_track = track
        self._on_rtcp = on_rtcp
        self._seq = random.randint(0, 0xFFFF)
        self._ts_origin = random.randint(0, 0xFFFFFFFF)
        self._history: list[bytes | None] = [None] * HISTORY_SIZE
        self._payload_type = 0
        self._mid = b""
        self._mid_id = 0
        self._abs_id = 0
        self._cname: str | None = None
        self._srtp: pylibsrtp.Session | None = None
        self._srtp_t: Any = None
        self._length = _ffi.new("int *")
        self._rtcp_task: asyncio.Task[None] | None = None
        self._running = False
        # For sender reports: counters, and the RTP/NTP time of the last frame sent.
        self.packets_sent = 0
        self.octets_sent = 0
        self.retransmitted = 0
        self._last_rtp_ts = 0
        self._last_ntp = 0
        self._lsr = 0
        self._lsr_time = 0.0
        #: From the viewer's receiver reports (updated once per report, not per packet).
        self.remote_packets_lost = 0
        self.remote_fraction_lost = 0
        self.round_trip_time: float | None = None

    @classmethod
    def install(cls, transceiver: RTCRtpTransceiver, track: PacketTrack) -> LeanSender:
        """Put a `LeanSender` in place of a peer connection transceiver's own sender."""
        original = transceiver.sender
        sender = cls(track, original.transport)
        # The SSRCs the peer connection already wrote (or will write) in its SDP.
        sender._ssrc, sender._rtx_ssrc = original._ssrc, original._rtx_ssrc
        # The peer connection's one stream id: the viewer finds video and audio in one
        # MediaStream (`event.streams[0]`).
        sender._stream_id = original._stream_id
        transceiver._RTCRtpTransceiver__sender = sender  # type: ignore[attr-defined]
        return sender

    # RTCRtpSender's interface

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        """Start sending with the negotiated codec and header extensions."""
        if self._running:
            return
        self._payload_type = parameters.codecs[0].payloadType or 0
        self._mid = (parameters.muxId or "").encode()
        self._cname = parameters.rtcp.cname
        for ext in parameters.headerExtensions:
            if ext.uri == MID_URI:
                self._mid_id = ext.id
            elif ext.uri == ABS_SEND_TIME_URI:
                self._abs_id = ext.id
        self.transport._register_rtp_sender(self, parameters)
        self._srtp = self.transport._tx_srtp
        # pylibsrtp's `protect()` copies into and out of its own buffer through a Python
        # wrapper; the lean path calls libsrtp on a buffer of its own instead.
        self._srtp_t = self._srtp._srtp[0]
        self._running = True
        self._rtcp_task = asyncio.ensure_future(self._run_rtcp())
        self._lean_track.attach(self)

    async def stop(self) -> None:
        """Stop sending (a last RTCP BYE) and release the track."""
        if not self._running:
            self._lean_track.stop()
            return
        self._running = False
        self._lean_track.detach()
        self.transport._unregister_rtp_sender(self)
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rtcp_task
        self._send_rtcp_bytes(bytes(RtcpByePacket(sources=[self._ssrc])))
        self._lean_track.stop()

    # RTP

    def _destination(self) -> tuple[Any, tuple[str, int]] | None:
        """The selected pair's datagram transport and the viewer's address, while DTLS
        is up (aiortc's `_send_rtp` refuses to send otherwise, too)."""
        if self.transport._state is not DtlsState.CONNECTED:
            return None
        pair = self.transport.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None or pair.protocol.transport.is_closing():
            return None
        return pair.protocol.transport, pair.remote_addr

    def _extension(self, ntp: int) -> bytes:
        """The one-byte header extension block (RFC 8285) of one frame's packets."""
        body = b""
        if self._mid_id and self._mid:
            body += bytes([(self._mid_id << 4) | (len(self._mid) - 1)]) + self._mid
        if self._abs_id:
            body += bytes([(self._abs_id << 4) | 2]) + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
        if not body:
            return b""
        body += bytes(-len(body) % 4)
        return b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body

    def send_frame(self, frame: RtpFrame) -> bool:
        """Send one frame's packets now; False (nothing sent) when the socket is backed up.

        The only per-packet work: header pack, SRTP protect, history slot. No logging, no
        stats objects, no timers; the two counters feed the sender reports. The packets are
        assembled back to back in one scratch buffer, where libsrtp protects them in place,
        and leave by UDP segmentation offload: one `sendmsg` per run of equal-sized packets
        (an FU-A fragmented NAL unit is one or two runs) that the kernel cuts into the same
        datagrams one `sendto` each would have sent, for a fraction of the system calls.
        """
        destination = self._destination() if self._running else None
        if destination is None or self._srtp is None:
            return True  # not connected (any more): the frame is gone, not late
        udp, addr = destination
        buffered = udp.get_write_buffer_size()
        if buffered > MAX_BUFFERED_BYTES:
            return False
        ntp = _ntp_now()
        extension = self._extension(ntp)
        first = 0x90 if extension else 0x80
        timestamp = (self._ts_origin + frame.pts) & 0xFFFFFFFF
        history, length, srtp_t = self._history, self._length, self._srtp_t
        payload_type, ssrc, seq = self._payload_type, self._ssrc, self._seq
        payloads = frame.payloads
        last = len(payloads) - 1
        marker = 0x80 if frame.marker else 0
        buf, pack_into = _SCRATCH_VIEW, _HEADER.pack_into
        head = 12 + len(extension)
        # The run being assembled from the buffer's start: packets whose payloads have the
        # size of its first one (its last may be shorter), at most `_MAX_SEGMENTS`.
        offset = run_size = segment = count = 0
        octets = 0
        for i, payload in enumerate(payloads):
            size = len(payload)
            if offset and (size > run_size or count == _MAX_SEGMENTS
                           or offset + head + size + _SRTP_TRAILER > _SCRATCH_SIZE):
                _flush(udp, addr, offset, segment, buffered)
                offset = 0
            if not offset:
                run_size, count = size, 0
            pack_into(buf, offset, first, payload_type | marker if i == last else payload_type,
                      seq, timestamp, ssrc)
            buf[offset + 12:offset + head] = extension
            buf[offset + head:offset + head + size] = payload
            length[0] = head + size
            if _srtp_protect(srtp_t, _SCRATCH + offset, length):
                raise pylibsrtp.Error("srtp_protect failed")
            if not offset:
                segment = length[0]
            end = offset + length[0]
            history[seq % HISTORY_SIZE] = _SCRATCH_BYTES[offset:end]
            octets += size
            seq = (seq + 1) & 0xFFFF
            offset, count = end, count + 1
            if size < run_size:  # a shorter packet ends its run
                _flush(udp, addr, offset, segment, buffered)
                offset = 0
        if offset:
            _flush(udp, addr, offset, segment, buffered)
        self._seq = seq
        self.packets_sent += last + 1
        self.octets_sent += octets
        self._last_rtp_ts, self._last_ntp = timestamp, ntp
        return True

    def _resend(self, sequence_numbers: list[int]) -> None:
        destination = self._destination()
        if destination is None:
            return
        udp, addr = destination
        for seq in sequence_numbers:
            packet = self._history[seq % HISTORY_SIZE]
            # The protected header's sequence number is in clear text (bytes 2-3).
            if packet is not None and int.from_bytes(packet[2:4], "big") == seq:
                udp.sendto(packet, addr)
                self.retransmitted += 1

    # RTCP

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if self._on_rtcp is not None:
            self._on_rtcp()
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self._resend(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self._lean_track.request_keyframe()
        elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc != self._ssrc:
                    continue
                self.remote_packets_lost = report.packets_lost
                self.remote_fraction_lost = report.fraction_lost
                if report.lsr and report.lsr == self._lsr and report.dlsr:
                    self.round_trip_time = time.time() - self._lsr_time - report.dlsr / 65536

    async def _run_rtcp(self) -> None:
        """A sender report and SDES every 0.5 to 1.5 s (RFC 3550's randomised interval).

        One timer per viewer, not per packet: at 500 viewers that is ~500 short wake-ups
        a second, against ~115 000 packets a second.
        """
        while True:
            await asyncio.sleep(0.5 + random.random())
            ntp = self._last_ntp or _ntp_now()
            report = bytes(RtcpSrPacket(
                ssrc=self._ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp, rtp_timestamp=self._last_rtp_ts,
                    packet_count=self.packets_sent & 0xFFFFFFFF,
                    octet_count=self.octets_sent & 0xFFFFFFFF)))
            self._lsr, self._lsr_time = (ntp >> 16) & 0xFFFFFFFF, time.time()
            if self._cname is not None:
                report += bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(
                    ssrc=self._ssrc, items=[(1, self._cname.encode())])]))
            self._send_rtcp_bytes(report)

    def _send_rtcp_bytes(self, data: bytes) -> None:
        destination = self._destination()
        if destination is None or self._srtp is None:
            return
        try:
            protected = self._srtp.protect_rtcp(data)
        except pylibsrtp.Error:
            return
        destination[0].sendto(protected, destination[1])
