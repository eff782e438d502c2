"""Local ICE candidates on one chosen address (loopback in tests and on one machine).

aioice gathers on every interface except loopback, so a client talking to a VAS on
127.0.0.1 would offer no usable candidate. `gather_on` binds one UDP socket on the given
address (an ephemeral port) and installs it as the connection's only host candidate.
"""

from __future__ import annotations

import asyncio
import socket

from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aioice.turn import UDP_SOCKET_BUFFER_SIZE


async def gather_on(connection: Connection, ip: str) -> None:
    """Make `ip` the only host candidate of `connection`; run before it gathers itself."""
    if connection._local_candidates_start:
        raise RuntimeError("the connection has already gathered its candidates")
    connection._local_candidates_start = True
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: StunProtocol(connection), local_addr=(ip, 0))
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
    assert isinstance(protocol, StunProtocol)
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("host", "udp", ip), component=1, transport="udp",
        priority=candidate_priority(1, "host"), host=ip,
        port=transport.get_extra_info("sockname")[1], type="host",
    )
    connection._protocols.append(protocol)
    connection._local_candidates.append(protocol.local_candidate)
    connection._local_candidates_end = True
