"""api.cli.bind_sockets: every connection the API accepts has TCP_NODELAY (without it a
keep-alive client waits for a delayed ACK on every response)."""

from __future__ import annotations

import asyncio
import socket

from api.cli import bind_sockets


async def test_accepted_connections_have_tcp_nodelay():
    [sock] = bind_sockets(["127.0.0.1"], 0)
    nodelay: asyncio.Queue[int] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        nodelay.put_nowait(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_client, sock=sock)
    try:
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(nodelay.get(), 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_one_socket_per_address():
    sockets = bind_sockets(["127.0.0.1", "127.0.0.2"], 0)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.1", "127.0.0.2"]
    finally:
        for s in sockets:
            s.close()
