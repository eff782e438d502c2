"""Guide §3.2: start-stream, stop-stream and validate on V1 devices."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post
from litestar.params import FromPath, JSONBody

from api.auth import scoped_v1
from api.params import parse_id
from api.schemas import ValidateBody
from api.state import services_of
from core.clock import iso
from core.credentials import mask_text, split_rtsp_url, with_password

VALIDATE_DEADLINE_S = 25.0


@post("/{device_id:str}/start-stream", status_code=200, **scoped_v1("streams:write"))
async def start_stream(request: Request[Any, Any, Any], device_id: FromPath[str]) -> dict[str, Any]:
    """Start the camera's stream and answer when it is LIVE (30 s at most).

    A camera that is already streaming answers at once with `reconnect: true` and the same
    ids. Failures carry the guide's codes: 502 RTSP_CONNECTION_FAILED, 504 RTSP_TIMEOUT,
    502 SSRC_CAPTURE_FAILED, 503 MEDIASOUP_UNAVAILABLE.
    """
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    await services.devices.get(ident)
    result = await services.control.start(ident)
    stream = result.stream
    producer = await services.streams.producer(stream["id"])
    started_at = iso(stream["started_at"] or stream["created_at"])
    body: dict[str, Any] = {
        "status": "success",
        "device_id": str(ident),
        "room_id": str(ident),
        "transport_id": producer["transport_id"] if producer else None,
        "producers": {"video": producer["mediasoup_id"] if producer else None},
        "stream": {"status": "started", "started_at": started_at},
        "v2_stream_id": str(stream["id"]),
    }
    if result.reconnect:
        body["stream"] = {"status": "active", "message": "Stream already running",
                          "started_at": started_at}
        body["reconnect"] = True
    return body


@post("/{device_id:str}/stop-stream", status_code=200, **scoped_v1("streams:write"))
async def stop_stream(request: Request[Any, Any, Any], device_id: FromPath[str]) -> dict[str, Any]:
    """Stop the camera's stream: ingest ends, consumers close, the stream becomes CLOSED.

    `stopped` is false when the camera had no active stream.
    """
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    await services.devices.get(ident)
    stream = await services.streams.active_for_camera(ident)
    stopped = stream is not None and await services.control.stop(stream["id"])
    return {"status": "success", "device_id": str(ident), "stopped": stopped}


@post("/validate", status_code=200, **scoped_v1("streams:write"))
async def validate(request: Request[Any, Any, Any], data: JSONBody[ValidateBody]) -> dict[str, Any]:
    """Probe an RTSP URL for real (open it, read its video) without saving a device."""
    services = services_of(request.app)
    url, password = split_rtsp_url(data.rtsp_url.strip())
    shown = with_password(url, password, masked=True)
    message = await services.jobs.enqueue(
        "validate_rtsp", with_password(url, password, masked=False), data.rtsp_transport or "tcp"
    )
    outcome: dict[str, Any] = await services.jobs.wait(message, VALIDATE_DEADLINE_S)
    if outcome["valid"]:
        return {
            "valid": True,
            "rtsp_url": shown,
            "ssrc": outcome["ssrc"],
            "message": "Device validated successfully",
            "video": {k: outcome[k] for k in ("codec", "width", "height", "fps", "profile")},
        }
    detail = mask_text(outcome.get("detail") or "")
    return {
        "valid": False,
        "error": f"{outcome['error']}: {detail}" if detail else outcome["error"],
        "error_code": outcome["error_code"],
        "rtsp_url": shown,
    }


router = Router(path="/api/v1/devices", route_handlers=[start_stream, stop_stream, validate],
                tags=["devices (v1)"])
