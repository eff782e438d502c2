"""WebRTC egress: a Router per stream owning its fan-out, mediasoup-compatible consumers
and WHEP sessions.

Knows nothing of HTTP or the database: the media node drives these objects and maps
their errors (`media.webrtc.errors`) to its callers' terms.
"""

from __future__ import annotations

import logging

from media.webrtc.capabilities import (
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)
from media.webrtc.consumer_transport import ConsumerTransport
from media.webrtc.errors import (
    CapabilityMismatch,
    InvalidRemoteParameters,
    KindUnavailable,
    PortRangeExhausted,
    TransportStateError,
    WebRtcError,
)
from media.webrtc.fanout import Fanout
from media.webrtc.packet_track import PacketTrack
from media.webrtc.router import Router
from media.webrtc.server_offer import ServerOfferSession
from media.webrtc.settings import WebRtcSettings
from media.webrtc.whep import WhepSession

logger = logging.getLogger(__name__)

__all__ = [
    "CapabilityMismatch",
    "ConsumerTransport",
    "Fanout",
    "InvalidRemoteParameters",
    "KindUnavailable",
    "PacketTrack",
    "PortRangeExhausted",
    "Router",
    "ServerOfferSession",
    "TransportStateError",
    "WebRtcError",
    "WebRtcSettings",
    "WhepSession",
    "consumer_rtp_parameters",
    "random_ssrc",
    "router_rtp_capabilities",
]
