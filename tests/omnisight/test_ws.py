"""The OmniSight WebSocket on real `vas api` processes, with a real client library, and
messages published through Redis by another process (this test, standing in for a worker)."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from core import notify
from core.clock import utcnow
from core.settings import load_settings
from core.tokens import issue_access_token
from tests.conftest import ADMIN_SECRET
from tests.e2e.processes import VasProcess, free_port
from tests.omnisight.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Api:
    """One `vas api` process and what a test needs to talk to it."""

    def __init__(self, process: VasProcess, port: int) -> None:
        self.process = process
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/api/v1/ws"

    def login(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
        response = httpx.post(f"{self.http}/api/v1/auth/login",
                              json={"email": email, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


@pytest.fixture
def settings_env(settings_env: dict[str, str], backend: str,
                 request: pytest.FixtureRequest) -> dict[str, str]:
    """On PostgreSQL, a database of its own for the processes of each test."""
    if backend == "postgres":
        return {**settings_env, "DATABASE_URL": request.getfixturevalue("fresh_postgres_url")}
    return settings_env


@pytest.fixture
def start_api(start_process: Callable[..., VasProcess]) -> Callable[[], Api]:
    def start() -> Api:
        port = free_port()
        process = start_process("api", "Application startup complete", VAS_PORT=str(port))
        return Api(process, port)

    return start


@pytest.fixture
def publisher(settings_env: dict[str, str]) -> Iterator[Callable[[dict[str, Any]], int]]:
    """Publish as a worker would: a plain Redis client and core.notify."""
    client = redis.Redis.from_url(settings_env["REDIS_URL"])
    namespace = settings_env["VAS_REDIS_NAMESPACE"]
    yield lambda message: notify.publish_sync(client, namespace, message)
    client.close()


def _recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


def _close_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    raise AssertionError("the socket stayed open")


def _heartbeat(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"type": "heartbeat"}))
    return _recv(ws)


def test_the_three_ways_to_present_a_token(start_api, settings_env):
    api = start_api()
    token = api.login()
    with connect(f"{api.ws}?token={token}", open_timeout=10) as ws:
        ack = _heartbeat(ws)
        assert set(ack) == {"type", "timestamp"} and ack["type"] == "heartbeat_ack"
        assert ISO_MS.match(ack["timestamp"])
    with connect(api.ws, subprotocols=["bearer", token], open_timeout=10) as ws:
        assert ws.subprotocol == "bearer"
        assert _heartbeat(ws)["type"] == "heartbeat_ack"
    with connect(api.ws, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert _heartbeat(ws)["type"] == "heartbeat_ack"
        ws.send("not json")
        assert _recv(ws)["type"] == "error"
        ws.send(json.dumps({"type": "fly"}))
        assert _recv(ws)["data"]["code"] == "VALIDATION_ERROR"
    # The token in the URL is masked in the log lines of the process.
    time.sleep(0.3)
    assert token not in api.process.output
    assert "token=******" in api.process.output


def test_bad_expired_and_expiring_tokens_close_with_4401(start_api, settings_env):
    secret = load_settings(settings_env).auth.jwt_secret  # before the process: same key file
    api = start_api()
    expired = issue_access_token(secret, "admin", ["admin"], ttl_s=-5)
    for url in (f"{api.ws}?token=garbage", f"{api.ws}?token={expired}"):
        with connect(url, open_timeout=10) as ws:
            assert _close_code(ws) == 4401
    with connect(api.ws, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))  # not an auth message
        assert _close_code(ws) == 4401
    with connect(api.ws, subprotocols=["bearer", "garbage"], open_timeout=10) as ws:
        assert _close_code(ws) == 4401
    # A token that expires while connected closes the socket when it does.
    short = issue_access_token(secret, "admin", ["admin"], ttl_s=2)
    with connect(f"{api.ws}?token={short}", open_timeout=10) as ws:
        assert _heartbeat(ws)["type"] == "heartbeat_ack"
        started = time.monotonic()
        assert _close_code(ws) == 4401
        assert time.monotonic() - started < 5
    # A valid token that may receive nothing.
    nothing = issue_access_token(secret, "admin", ["bookmarks:write"], ttl_s=60)
    with connect(f"{api.ws}?token={nothing}", open_timeout=10) as ws:
        assert _close_code(ws) == 4403


def test_messages_from_another_process_reach_every_socket(start_api, publisher):
    api = start_api()
    user_token = _new_user_token(api)
    camera = str(uuid.uuid4())
    messages = [
        notify.camera_status(camera, "online", utcnow()),
        notify.recording_status(uuid.uuid4(), camera, "completed", utcnow(), utcnow()),
        notify.system_notification("warning", "Storage usage above 80%"),
    ]
    with connect(f"{api.ws}?token={user_token}", open_timeout=10) as ws:
        _heartbeat(ws)
        time.sleep(6)  # longer than redis-py's 5 s socket timeout: the subscription survives
        for message in messages:
            assert publisher(message) >= 1
        received = [_recv(ws) for _ in messages]
    assert received == messages
    assert set(received[0]["data"]) == {"cameraId", "status", "timestamp"}
    assert set(received[1]["data"]) == {"id", "cameraId", "status", "startTime", "endTime", "timestamp"}
    assert set(received[2]["data"]) == {"id", "level", "message", "timestamp"}


def _new_user_token(api: Api) -> str:
    name = f"u{uuid.uuid4().hex[:8]}"
    created = httpx.post(f"{api.http}/api/v1/auth/register", timeout=10, json={
        "username": name, "email": f"{name}@example.com", "password": "correct horse 42"})
    assert created.status_code == 201, created.text
    return api.login(f"{name}@example.com", "correct horse 42")


def _event(camera: str) -> dict[str, Any]:
    return notify.event(uuid.uuid4(), camera, "Front Door Camera", uuid.uuid4(), utcnow(),
                        "person", 0.92, "/thumbnails/event.jpg")


def test_events_go_only_to_subscribers_of_their_camera(start_api, publisher):
    api = start_api()
    token = _new_user_token(api)
    front, back = str(uuid.uuid4()), str(uuid.uuid4())
    marker = notify.system_notification("info", "marker")
    with connect(f"{api.ws}?token={token}", open_timeout=10) as ws:
        _heartbeat(ws)  # the connection is registered with the hub before anything is sent
        publisher(_event(front))
        publisher(marker)
        assert _recv(ws)["data"]["message"] == "marker"  # the event was not delivered

        ws.send(json.dumps({"type": "subscribe", "channel": "camera_events",
                            "data": {"cameraId": front.upper()}}))
        _heartbeat(ws)  # commands are handled in order: the subscription is in place
        wanted = _event(front)
        publisher(_event(back))
        publisher(wanted)
        got = _recv(ws)
        assert got == wanted
        assert set(got["data"]) == {"id", "cameraId", "cameraName", "recordingId", "timestamp",
                                    "type", "confidence", "thumbnailPath"}

        ws.send(json.dumps({"type": "unsubscribe", "channel": "camera_events",
                            "data": {"cameraId": front}}))
        _heartbeat(ws)
        publisher(_event(front))
        publisher(marker)
        assert _recv(ws)["data"]["message"] == "marker"

        ws.send(json.dumps({"type": "subscribe", "channel": "camera_events",
                            "data": {"cameraId": "not-a-camera"}}))
        assert _recv(ws)["type"] == "error"


def test_a_client_that_never_reads_is_dropped_while_others_keep_receiving(start_api, publisher):
    api = start_api()
    token = api.login()
    padding = os.urandom(6000).hex()  # incompressible, whatever the extensions
    batches, per_batch = 40, 100
    # A small receive buffer (it also turns off the kernel's buffer autotuning, up to 32 MiB
    # here) so that the slow client's backlog reaches the server within this test's traffic.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", int(api.http.rsplit(":", 1)[1])))
    with connect(f"{api.ws}?token={token}", open_timeout=10) as fast, \
            connect(f"{api.ws}?token={token}", open_timeout=10, max_queue=4, sock=sock,
                    compression=None) as slow:
        _heartbeat(fast)
        _heartbeat(slow)
        for batch in range(batches):
            for i in range(per_batch):
                publisher(notify.system_notification("info", f"{batch}-{i} {padding}"))
            for i in range(per_batch):  # the fast client reads everything, in order
                assert _recv(fast, timeout=10)["data"]["message"].startswith(f"{batch}-{i} ")
        assert _heartbeat(fast)["type"] == "heartbeat_ack"
        delivered = 0
        try:
            while True:
                slow.recv(timeout=10)
                delivered += 1
        except ConnectionClosed:
            pass
        except TimeoutError:
            raise AssertionError(f"slow client still open after {delivered} messages") from None
        assert delivered < batches * per_batch
    assert "too slow" in api.process.output


def test_one_publish_reaches_clients_of_every_api_process(start_api, publisher):
    first, second = start_api(), start_api()
    message = notify.camera_status(uuid.uuid4(), "offline")
    with connect(f"{first.ws}?token={first.login()}", open_timeout=10) as one, \
            connect(f"{second.ws}?token={second.login()}", open_timeout=10) as two:
        _heartbeat(one)
        _heartbeat(two)
        assert publisher(message) == 2  # one subscription per API process
        assert _recv(one) == message
        assert _recv(two) == message


def test_api_client_tokens_connect_too(start_api, publisher):
    api = start_api()
    token = httpx.post(f"{api.http}/v2/auth/token", timeout=10, json={
        "client_id": "admin", "client_secret": ADMIN_SECRET}).json()["access_token"]
    with connect(api.ws, subprotocols=["bearer", token], open_timeout=10) as ws:
        _heartbeat(ws)
        message = notify.system_notification("critical", "Media node lost")
        publisher(message)
        assert _recv(ws) == message
