"""The ICE-lite agent against hand-made STUN requests on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioice import Connection, stun

from media.webrtc.errors import PortRangeExhausted
from media.webrtc.gathering import gather_announced
from media.webrtc.ice_lite import IceLiteConnection
from media.webrtc.settings import WebRtcSettings

pytestmark = pytest.mark.asyncio

SETTINGS = WebRtcSettings(announced_ips=("127.0.0.1",), port_min=47000, port_max=47999)


class Peer(asyncio.DatagramProtocol):
    """A bare UDP socket playing the browser's side."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)


@pytest.fixture
async def lite() -> AsyncIterator[IceLiteConnection]:
    connection = IceLiteConnection(SETTINGS)
    await connection.gather_candidates()
    yield connection
    await connection.close()


@pytest.fixture
async def peer() -> AsyncIterator[tuple[asyncio.DatagramTransport, Peer]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    yield transport, protocol
    transport.close()


def check(
    lite: IceLiteConnection,
    *,
    username: str | None = None,
    password: str | None = None,
    priority: bool = True,
    role: str = "ICE-CONTROLLING",
    use_candidate: bool = False,
) -> stun.Message:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = username or f"{lite.local_username}:browser"
    if priority:
        request.attributes["PRIORITY"] = 1845501695
    request.attributes[role] = 12345
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity((password or lite.local_password).encode())
    return request


async def exchange(
    lite: IceLiteConnection,
    peer: tuple[asyncio.DatagramTransport, Peer],
    request: stun.Message,
) -> stun.Message:
    transport, protocol = peer
    candidate = lite.local_candidates[0]
    transport.sendto(bytes(request), (candidate.host, candidate.port))
    data = await asyncio.wait_for(protocol.received.get(), 1)
    response = stun.parse_message(data)
    assert response.transaction_id == request.transaction_id
    return response


async def test_gathers_on_the_announced_address_within_the_range(
    lite: IceLiteConnection,
) -> None:
    [candidate] = lite.local_candidates
    assert candidate.host == "127.0.0.1" and candidate.type == "host"
    assert 47000 <= candidate.port <= 47999


async def test_a_valid_check_is_answered_and_selects_the_pair(
    lite: IceLiteConnection, peer: tuple[asyncio.DatagramTransport, Peer]
) -> None:
    connecting = asyncio.ensure_future(lite.connect())
    await asyncio.sleep(0.01)
    assert not connecting.done()

    response = await exchange(lite, peer, check(lite))
    assert response.message_class == stun.Class.RESPONSE
    peer_addr = peer[0].get_extra_info("sockname")
    assert response.attributes["XOR-MAPPED-ADDRESS"] == (peer_addr[0], peer_addr[1])
    assert response.check_message_integrity(lite.local_password.encode())
    assert "FINGERPRINT" in response.attributes
    # Selected provisionally: DTLS may start, connect() returns.
    await asyncio.wait_for(connecting, 1)
    assert lite.last_check_at is not None and lite.last_check_at <= time.monotonic()
    assert not lite.nominated
    [remote] = lite.remote_candidates
    assert remote.type == "prflx" and (remote.host, remote.port) == peer_addr[:2]

    await exchange(lite, peer, check(lite, use_candidate=True))
    assert lite.nominated

    # Data now flows both ways on the selected pair.
    await lite.send(b"\x80hello")
    assert await asyncio.wait_for(peer[1].received.get(), 1) == b"\x80hello"
    candidate = lite.local_candidates[0]
    peer[0].sendto(b"\x80world", (candidate.host, candidate.port))
    assert await asyncio.wait_for(lite.recv(), 1) == b"\x80world"


async def test_data_reaches_the_transport_only_from_checked_addresses(
    lite: IceLiteConnection, peer: tuple[asyncio.DatagramTransport, Peer]
) -> None:
    loop = asyncio.get_running_loop()
    stranger, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    candidate = lite.local_candidates[0]
    try:
        await exchange(lite, peer, check(lite, use_candidate=True))
        stranger.sendto(b"\x16injected", (candidate.host, candidate.port))
        peer[0].sendto(b"\x16from-peer", (candidate.host, candidate.port))
        assert await asyncio.wait_for(lite.recv(), 1) == b"\x16from-peer"
    finally:
        stranger.close()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"priority": False}, 400),
        ({"username": "wrong:browser"}, 401),
        ({"password": "x" * 32}, 401),
        ({"role": "ICE-CONTROLLED"}, 487),
    ],
)
async def test_invalid_checks_are_refused(
    lite: IceLiteConnection,
    peer: tuple[asyncio.DatagramTransport, Peer],
    kwargs: dict[str, Any],
    code: int,
) -> None:
    response = await exchange(lite, peer, check(lite, **kwargs))
    assert response.message_class == stun.Class.ERROR
    assert response.attributes["ERROR-CODE"][0] == code
    assert lite.last_check_at is None
    assert lite.remote_candidates == []


async def test_a_check_without_integrity_is_a_bad_request(
    lite: IceLiteConnection, peer: tuple[asyncio.DatagramTransport, Peer]
) -> None:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{lite.local_username}:browser"
    request.attributes["PRIORITY"] = 1
    request.add_fingerprint()
    response = await exchange(lite, peer, request)
    assert response.attributes["ERROR-CODE"][0] == 400


async def test_use_candidate_moves_the_selection(
    lite: IceLiteConnection, peer: tuple[asyncio.DatagramTransport, Peer]
) -> None:
    loop = asyncio.get_running_loop()
    second, second_protocol = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        await exchange(lite, peer, check(lite))
        # A check without USE-CANDIDATE from elsewhere does not move the selection...
        await exchange(lite, (second, second_protocol), check(lite))
        await lite.send(b"\x80a")
        assert await asyncio.wait_for(peer[1].received.get(), 1) == b"\x80a"
        # ...a nomination does.
        await exchange(lite, (second, second_protocol), check(lite, use_candidate=True))
        await lite.send(b"\x80b")
        assert await asyncio.wait_for(second_protocol.received.get(), 1) == b"\x80b"
    finally:
        second.close()


async def test_close_releases_a_pending_connect(lite: IceLiteConnection) -> None:
    connecting = asyncio.ensure_future(lite.connect())
    await asyncio.sleep(0.01)
    await lite.close()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(connecting, 1)


async def test_port_range_exhausted() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        connection = IceLiteConnection(
            WebRtcSettings(announced_ips=("127.0.0.1",), port_min=port, port_max=port)
        )
        with pytest.raises(PortRangeExhausted):
            await connection.gather_candidates()
        await connection.close()


async def test_announced_and_listen_addresses_may_differ() -> None:
    # A node behind NAT announces its public address (TEST-NET-1 here, never contacted)
    # and listens on its own; the test listens on loopback, never on the wildcard.
    settings = WebRtcSettings(
        announced_ips=("192.0.2.10",), listen_ip="127.0.0.1", port_min=47000, port_max=47999
    )
    connection = Connection(ice_controlling=False)
    await gather_announced(connection, settings)
    try:
        [candidate] = connection.local_candidates
        assert candidate.host == "192.0.2.10"
        sockname = connection._protocols[0].transport.get_extra_info("sockname")
        assert sockname == ("127.0.0.1", candidate.port)
        with pytest.raises(RuntimeError):
            await gather_announced(connection, settings)
    finally:
        await connection.close()
