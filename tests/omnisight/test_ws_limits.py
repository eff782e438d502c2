"""VAS_MAX_WS_PER_USER on real `vas api` processes: the connection over the bound is closed
with 1008 and a reason naming the setting, counted across API processes (through Redis);
other callers are not affected; a connection that closes frees its seat."""

from __future__ import annotations

import contextlib
import os
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ADMIN_SECRET
from tests.e2e.processes import free_port
from tests.omnisight.test_ws import Api, _heartbeat

# The count lives in Redis; the database backends do not differ here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _closed(ws: ClientConnection) -> tuple[int, str] | None:
    """(code, reason) the server closed with; None when it answers a heartbeat instead."""
    try:
        _heartbeat(ws)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason
    return None


def test_websockets_are_bounded_per_user(start_process):
    api, second = (
        Api(start_process("api", "Application startup complete", VAS_PORT=str(port),
                          VAS_MAX_WS_PER_USER="2"), port)
        for port in (free_port(), free_port()))
    token = api.login()
    url = f"{api.ws}?token={token}"
    # One connection on each API process: the user's two seats.
    with connect(url, open_timeout=10) as one, \
            connect(f"{second.ws}?token={token}", open_timeout=10) as two:
        _heartbeat(one)
        _heartbeat(two)
        with connect(url, open_timeout=10) as extra:
            code, reason = _closed(extra) or (None, "")
            assert code == 1008 and "VAS_MAX_WS_PER_USER" in reason, reason
        with connect(api.ws, subprotocols=["bearer", api.login()], open_timeout=10) as again:
            assert _closed(again) is not None  # another sign-in of the same user: same bound
        client_token = httpx.post(f"{api.http}/v2/auth/token", timeout=10, json={
            "client_id": "admin", "client_secret": ADMIN_SECRET}).json()["access_token"]
        with connect(f"{api.ws}?token={client_token}", open_timeout=10) as other:
            assert _heartbeat(other)["type"] == "heartbeat_ack"  # another caller
        two.close()
        deadline = time.monotonic() + 10  # the server notices the close: the seat is free
        while True:
            with connect(url, open_timeout=10) as three:
                if _closed(three) is None:
                    break
            assert time.monotonic() < deadline, "the closed connection's seat stayed taken"
            time.sleep(0.1)


def test_the_default_bound_is_ten_connections_per_user(start_process, settings_env):
    """VAS_MAX_WS_PER_USER on its default: ten connections of one user are served, the 11th
    is closed with 1008 naming the setting."""
    port = free_port()
    api = Api(start_process("api", "Application startup complete", VAS_PORT=str(port)), port)
    assert "VAS_MAX_WS_PER_USER" not in {**os.environ, **settings_env}  # the default, 10
    url = f"{api.ws}?token={api.login()}"
    with contextlib.ExitStack() as stack:
        for _ in range(10):
            ws = stack.enter_context(connect(url, open_timeout=10))
            assert _heartbeat(ws)["type"] == "heartbeat_ack"
        with connect(url, open_timeout=10) as eleventh:
            code, reason = _closed(eleventh) or (None, "")
            assert code == 1008 and "VAS_MAX_WS_PER_USER" in reason, reason
