"""Host candidates on the announced addresses, bound within the configured port range.

aioice gathers on every interface address except loopback and picks ephemeral ports; a
media node must instead announce the addresses it is told to (a public address behind
NAT, or 127.0.0.1 in tests) on ports a firewall can open. This module binds those sockets
and installs them in an aioice `Connection`, for the ICE-lite consumer transport and for
the full-ICE connections of WHEP peer connections alike.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
from collections.abc import Callable

from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aioice.turn import UDP_SOCKET_BUFFER_SIZE

from media.webrtc.errors import PortRangeExhausted
from media.webrtc.settings import WebRtcSettings

logger = logging.getLogger(__name__)

ProtocolFactory = Callable[[], StunProtocol]

# Binding errors that mean "try the next port" rather than "this address is unusable".
_PORT_BUSY = {errno.EADDRINUSE, errno.EACCES}


def _wildcard_for(address: str) -> str:
    return "::" if ipaddress.ip_address(address).version == 6 else "0.0.0.0"  # noqa: S104


async def bind_in_range(
    factory: ProtocolFactory, ip: str, port_min: int, port_max: int
) -> StunProtocol:
    """Bind a UDP socket on `ip` to a free port of [port_min, port_max].

    The search starts at a random port so that several processes sharing a range rarely
    race for the same port. `OSError` other than "port busy" is raised unchanged.
    """
    loop = asyncio.get_running_loop()
    span = port_max - port_min + 1
    start = random.randrange(span)
    for offset in range(span):
        port = port_min + (start + offset) % span
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                factory, local_addr=(ip, port)
            )
        except OSError as exc:
            if exc.errno in _PORT_BUSY:
                continue
            raise
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A burst of RTCP/DTLS must not overflow the default receive buffer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
        assert isinstance(protocol, StunProtocol)
        return protocol
    raise PortRangeExhausted(f"no free UDP port on {ip} in [{port_min}, {port_max}]")


async def _bind_for(
    factory: ProtocolFactory, announced: str, settings: WebRtcSettings
) -> StunProtocol:
    if settings.listen_ip is not None:
        return await bind_in_range(
            factory, settings.listen_ip, settings.port_min, settings.port_max
        )
    try:
        return await bind_in_range(factory, announced, settings.port_min, settings.port_max)
    except OSError as exc:
        if exc.errno != errno.EADDRNOTAVAIL:
            raise
    # The announced address is not ours (NAT, container): listen everywhere instead.
    wildcard = _wildcard_for(announced)
    logger.debug("%s is not a local address, binding %s", announced, wildcard)
    return await bind_in_range(factory, wildcard, settings.port_min, settings.port_max)


async def gather_announced(
    connection: Connection,
    settings: WebRtcSettings,
    factory: ProtocolFactory | None = None,
) -> None:
    """Install one host candidate per announced address in `connection`.

    Marks gathering as done, so a later `gather_candidates()` (which aiortc calls from
    `RTCIceGatherer.gather()`) returns without looking at the machine's interfaces or
    asking a STUN server. Must run before the connection gathers by itself.
    """
    if connection._local_candidates_start:
        raise RuntimeError("the connection has already gathered its candidates")
    connection._local_candidates_start = True
    make = factory if factory is not None else (lambda: StunProtocol(connection))
    protocols: list[StunProtocol] = []
    try:
        for index, announced in enumerate(settings.announced_ips):
            protocol = await _bind_for(make, announced, settings)
            port = protocol.transport.get_extra_info("sockname")[1]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", announced),
                component=1,
                transport="udp",
                # Earlier announced addresses are preferred.
                priority=candidate_priority(1, "host", local_pref=65535 - index),
                host=announced,
                port=port,
                type="host",
            )
            protocols.append(protocol)
    except BaseException:
        for protocol in protocols:
            protocol.transport.close()
        raise
    connection._protocols += protocols
    connection._local_candidates += [p.local_candidate for p in protocols]
    connection._local_candidates_end = True
    logger.debug(
        "gathered %s",
        ", ".join(f"{p.local_candidate.host}:{p.local_candidate.port}" for p in protocols),
    )
