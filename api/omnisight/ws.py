"""OmniSight WebSocket `/api/v1/ws`: live camera, recording, event and system messages.

The access token may come as `?token=…`, as the subprotocols `bearer, <token>` (so it need not
sit in a URL), or as a first message `{"type": "auth", "token": "…"}` within 10 s. Close codes:
4401 bad, expired or revoked token; 4403 a token that may receive nothing; 4429 too slow;
1008 (policy violation) the user already has `VAS_MAX_WS_PER_USER` connections open, on
every API process together (the reason says so; one closing frees the seat); 1009 a
command over 4 KiB; 1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from redis.asyncio import Redis

from api.auth import verify_token
from api.omnisight.hub import MAX_SUBSCRIPTIONS, Connection, WsHub, allowed_types
from api.omnisight.ws_seats import RENEW_S, WsSeats
from core.clock import iso_ms, utcnow
from core.errors import Unauthorized
from core.settings import Settings

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
RECHECK_S = 15.0  # how often a live connection's token is checked for revocation
MAX_COMMAND_BYTES = 4096
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 1008  # RFC 6455 policy violation: VAS_MAX_WS_PER_USER reached
SUBPROTOCOL = "bearer"


def _offered_token(socket: WebSocket[Any, Any, Any]) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept) from the query string or `Sec-WebSocket-Protocol`."""
    offered = [p.strip() for p in socket.scope.get("subprotocols") or []]
    if SUBPROTOCOL in offered:
        others = [p for p in offered if p != SUBPROTOCOL]
        return (others[0] if others else None), SUBPROTOCOL
    return socket.query_params.get("token") or None, None


async def _first_message_token(socket: WebSocket[Any, Any, Any]) -> str:
    try:
        event = await asyncio.wait_for(socket.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise Unauthorized("No token: send ?token=, the bearer subprotocol or an auth message") \
            from None
    if event["type"] != "websocket.receive":
        raise WebSocketDisconnect(detail="disconnected before authenticating")
    try:
        message = json.loads(event.get("text") or event.get("bytes") or b"")
        token = message["token"] if message.get("type") == "auth" else None
    except (ValueError, KeyError, TypeError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise Unauthorized('The first message must be {"type": "auth", "token": "<access token>"}')
    return token


def _error(message: str) -> str:
    return json.dumps({"type": "error", "data": {"code": "VALIDATION_ERROR", "message": message}})


def _handle_command(connection: Connection, text: str) -> None:
    """heartbeat → heartbeat_ack; subscribe/unsubscribe to a camera's events."""
    try:
        command = json.loads(text)
        kind = command["type"]
    except (ValueError, KeyError, TypeError):
        connection.send(_error("Commands are JSON objects with a `type`"))
        return
    if kind == "heartbeat":
        connection.send(json.dumps({"type": "heartbeat_ack", "timestamp": iso_ms(utcnow())}))
        return
    if kind not in ("subscribe", "unsubscribe"):
        connection.send(_error(f"Unknown command type {str(kind)[:32]!r}"))
        return
    data = command.get("data")
    camera = data.get("cameraId") if isinstance(data, dict) else None
    if command.get("channel") != "camera_events" or not isinstance(camera, str):
        connection.send(_error('subscribe/unsubscribe need "channel": "camera_events" and '
                               '"data": {"cameraId": "<camera id>"}'))
        return
    try:
        camera_id = str(uuid.UUID(camera))
    except ValueError:
        connection.send(_error("cameraId must be a camera id (UUID)"))
        return
    if kind == "unsubscribe":
        connection.cameras.discard(camera_id)
    elif len(connection.cameras) >= MAX_SUBSCRIPTIONS:
        connection.send(_error(f"At most {MAX_SUBSCRIPTIONS} camera subscriptions"))
    else:
        connection.cameras.add(camera_id)


async def _receive(socket: WebSocket[Any, Any, Any], connection: Connection) -> None:
    while True:
        event = await socket.receive()
        if event["type"] != "websocket.receive":
            connection.close(1000, "")
            return
        text = event.get("text")
        if text is None:
            raw = event.get("bytes") or b""
            text = raw.decode(errors="replace")
        if len(text) > MAX_COMMAND_BYTES:
            connection.close(1009, "Command too large")
            return
        _handle_command(connection, text)


async def _send(socket: WebSocket[Any, Any, Any], connection: Connection) -> None:
    while True:
        text = await connection.queue.get()
        await socket.send_data(text, mode="text")


async def _watch(app: Litestar, token: str, connection: Connection) -> None:
    """Close with 4401 when the token expires or is revoked (user removed, signed out)."""
    expires_at = connection.principal.expires_at or time.time()
    while True:
        await asyncio.sleep(max(0.0, min(expires_at - time.time(), RECHECK_S)))
        try:
            await verify_token(app, token)
        except Unauthorized as exc:
            connection.close(CLOSE_UNAUTHORIZED, exc.message)
            return


async def _renew(seats: WsSeats, caller: str, seat: str) -> None:
    while True:
        await asyncio.sleep(RENEW_S)
        await seats.renew(caller, seat)


@websocket("/ws")
async def ws(socket: WebSocket[Any, Any, Any]) -> None:
    """Live updates (camera_status, recording_status, event, system_notification)."""
    hub: WsHub = socket.app.state.ws_hub
    token, subprotocol = _offered_token(socket)
    try:
        # A token offered with the handshake is checked before accepting, so that once the
        # client's connect() returns it receives every message published from then on.
        principal = None if token is None else await verify_token(socket.app, token)
        await socket.accept(subprotocols=subprotocol)
        if principal is None:
            token = await _first_message_token(socket)
            principal = await verify_token(socket.app, token)
    except Unauthorized as exc:
        await socket.accept(subprotocols=subprotocol)  # no-op when already accepted
        await socket.close(CLOSE_UNAUTHORIZED, exc.message)
        return
    except WebSocketDisconnect:
        return
    types = allowed_types(principal)
    if not types:
        await socket.close(CLOSE_FORBIDDEN, "This token may receive no notifications")
        return
    seats: WsSeats = socket.app.state.ws_seats
    caller, seat = f"{principal.kind}:{principal.client_id}", uuid.uuid4().hex
    if not await seats.take(caller, seat):
        await socket.close(CLOSE_TOO_MANY, f"Too many connections for this user: at most "
                                           f"{seats.limit} (VAS_MAX_WS_PER_USER); close one first")
        return
    connection = Connection(principal, types)
    hub.add(connection)
    assert token is not None
    tasks = [
        asyncio.create_task(_receive(socket, connection)),
        asyncio.create_task(_send(socket, connection)),
        asyncio.create_task(_watch(socket.app, token, connection)),
        asyncio.create_task(connection.closing.wait()),
        asyncio.create_task(_renew(seats, caller, seat)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(connection)
        await seats.release(caller, seat)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
    disconnected = socket.connection_state == "disconnect"
    if connection.closing.is_set() and not disconnected:
        # Bounded: a client that reads nothing cannot take even the close frame.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                socket.close(connection.close_code, connection.close_reason), 2.0
            )


def ws_lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    """Subscribe this API process to the installation's notifications while it runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        assert settings.redis.url is not None, "REDIS_URL must be set before the API starts"
        hub = WsHub(settings.redis.url, settings.redis.namespace)
        await hub.start()
        app.state.ws_hub = hub
        redis = Redis.from_url(settings.redis.url)
        app.state.ws_seats = WsSeats(redis, settings.redis.namespace,
                                     settings.auth.max_ws_per_user)
        try:
            yield
        finally:
            await hub.stop()
            await redis.aclose()

    return lifespan
