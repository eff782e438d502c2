"""Settings of the WebRTC side of a media node: where it listens, what it announces."""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebRtcSettings:
    """Addresses, ports and timeouts for consumer transports and WHEP sessions.

    `media` does not read the environment: the media node builds this from the shared
    settings (`VAS_WEBRTC_ANNOUNCED_IP`, `VAS_WEBRTC_PORT_MIN`, `VAS_WEBRTC_PORT_MAX`).

    - `announced_ips`: the addresses put in ICE candidates, one candidate (and one UDP
      socket) per address. They may be public addresses of a NAT in front of the node.
    - `port_min`/`port_max`: the inclusive UDP port range sockets are bound in.
    - `listen_ip`: where the sockets bind. `None` binds each socket to its announced
      address when that address is assigned to this machine, else to the wildcard
      address, which is what a node behind NAT or in a container needs.
    - `silence_timeout_s`: a consumer that sends neither ICE checks nor RTCP for this
      long is closed (an ICE-lite server sends no consent checks of its own).
    - `connect_timeout_s`: the longest ICE + DTLS may take after `connect`.
    """

    announced_ips: tuple[str, ...] = ("127.0.0.1",)
    port_min: int = 40000
    port_max: int = 40999
    listen_ip: str | None = None
    silence_timeout_s: float = 30.0
    connect_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.announced_ips:
            raise ValueError("announced_ips must name at least one address")
        if not 1 <= self.port_min <= self.port_max <= 65535:
            raise ValueError(f"invalid UDP port range [{self.port_min}, {self.port_max}]")
        if self.silence_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
