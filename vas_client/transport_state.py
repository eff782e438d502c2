"""What a viewer can tell about its own side of the connection when frames stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver


async def describe(pc: RTCPeerConnection | None, receiver: RTCRtpReceiver | None,
                   reader: asyncio.Task[None] | None) -> dict[str, Any]:
    """The ICE and DTLS states (ICE "failed" after "completed" is a lost consent or a closed
    socket), the peer connection's states (WHEP: `pc`), the video RTP packets received so far
    and whether the track ended (its `reader` task is done)."""
    state: dict[str, Any] = {}
    if pc is not None:
        state["connection"] = pc.connectionState
        state["ice_connection"] = pc.iceConnectionState
        video = [t for t in pc.getTransceivers() if t.kind == "video"]
        receiver = video[0].receiver if video else None
    if receiver is not None:
        dtls = receiver.transport
        state["ice"], state["dtls"] = dtls.transport.state, dtls.state
        with contextlib.suppress(Exception):
            stats = await receiver.getStats()
            state["packets"] = sum(int(getattr(s, "packetsReceived", 0))
                                   for s in stats.values() if s.type == "inbound-rtp")
    state["track_ended"] = reader is not None and reader.done()
    return state
