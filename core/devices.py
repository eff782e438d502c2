"""Cameras (the guide's V1 devices): validation, storage with the password sealed, lookup."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from core.camera_urls import CameraPolicy, PinnedUrl, check_camera_url
from core.clock import utcnow
from core.credentials import CredentialBox, split_rtsp_url, with_password
from core.errors import Conflict, InvalidInput, NotFound
from core.stream_states import ACTIVE_STATES, StreamState
from core.tables import Device, Stream
from core.text import clean_text

TRANSPORTS = ("tcp", "udp")
Transport = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A camera. `rtsp_url` has no password; `rtsp_secret` is the password, sealed."""

    id: uuid.UUID
    name: str
    description: str | None
    rtsp_url: str
    rtsp_secret: str | None
    rtsp_transport: Transport
    location: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime | None
    ip_address: str | None = None  # as given; None: the URL's host is shown
    model: str | None = None
    settings: dict[str, Any] | None = None

    @property
    def host(self) -> str:
        """The camera's address: `ip_address` when given, else the URL's host."""
        return self.ip_address or (urlsplit(self.rtsp_url).hostname or "")

    @property
    def username(self) -> str | None:
        """The RTSP user name (kept in the URL, where ingest needs it)."""
        name = urlsplit(self.rtsp_url).username
        return None if name is None else unquote(name)

    @property
    def has_password(self) -> bool:
        return self.rtsp_secret is not None

    @property
    def bare_url(self) -> str:
        """The URL without any credentials (OmniSight's `rtspUrl`)."""
        parts = urlsplit(self.rtsp_url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def _record(row: dict[str, Any]) -> DeviceRecord:
    transport: Transport = "udp" if row["rtsp_transport"] == "udp" else "tcp"
    settings = row.get("settings")
    if isinstance(settings, str):  # JSON columns come back as text
        settings = json.loads(settings)
    return DeviceRecord(**{**row, "rtsp_transport": transport, "settings": settings,
                           "is_active": bool(row["is_active"])})


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    """Fields a create or update may set; None means "leave as is" on update."""

    name: str | None = None
    description: str | None = None
    rtsp_url: str | None = None
    location: str | None = None
    rtsp_transport: str | None = None
    # OmniSight: credentials apart from the URL ("" removes them), address, model, settings.
    username: str | None = None
    password: str | None = None
    ip_address: str | None = None
    model: str | None = None
    settings: dict[str, Any] | None = None


async def device_name(device_id: uuid.UUID) -> str:
    """The camera's name (404 when there is no such camera)."""
    row = await Device.select(Device.name).where(Device.id == device_id).first()
    if row is None:
        raise NotFound(f"Device {device_id} not found")
    return str(row["name"])


async def mark_active(device_id: uuid.UUID, active: bool) -> None:
    """`is_active`: whether the camera has a stream (the stream registry keeps it)."""
    await Device.update({Device.is_active: active}).where(Device.id == device_id)


class CameraStatus(StrEnum):
    """OmniSight's camera status, from the camera's active stream."""

    ONLINE = "online"
    OFFLINE = "offline"
    ERROR = "error"


def camera_status(state: StreamState | None) -> CameraStatus:
    """online: the stream is LIVE; error: it is ERROR; offline: anything else or no stream."""
    if state is StreamState.LIVE:
        return CameraStatus.ONLINE
    if state is StreamState.ERROR:
        return CameraStatus.ERROR
    return CameraStatus.OFFLINE


@dataclass(frozen=True, slots=True)
class CameraPage:
    """One page of cameras with their status, and the total matching the filters."""

    rows: list[tuple[DeviceRecord, CameraStatus]]
    total: int


async def _streaming_statuses() -> dict[uuid.UUID, CameraStatus]:
    """The status of every camera whose active stream is LIVE or ERROR (others: offline)."""
    rows = await Stream.select(Stream.camera_id, Stream.state).where(
        Stream.state.is_in([StreamState.LIVE.value, StreamState.ERROR.value]))
    return {row["camera_id"]: camera_status(StreamState(row["state"])) for row in rows}


class DeviceService:
    """Create, read, update and delete cameras; hand out their real URL only to ingest."""

    def __init__(self, box: CredentialBox, policy: CameraPolicy | None = None,
                 on_delete: Sequence[Callable[[uuid.UUID], Awaitable[None]]] = ()) -> None:
        self._box = box
        self.policy = policy or CameraPolicy()
        # What other services forget of a deleted camera (its detection settings).
        self._on_delete = tuple(on_delete)

    async def page(self, skip: int, limit: int) -> list[DeviceRecord]:
        rows: list[dict[str, Any]] = await Device.select().order_by(Device.created_at).offset(
            skip
        ).limit(limit)
        return [_record(r) for r in rows]

    async def cameras(self, status: CameraStatus | None, location: str | None, page: int,
                      limit: int) -> CameraPage:
        """Cameras oldest first, filtered by status and (exact) location."""
        statuses = await _streaming_statuses()
        condition: Any = None
        if location is not None:
            condition = Device.location == location
        if status is not None:
            ids = [cid for cid, value in statuses.items() if value is status]
            if status is CameraStatus.OFFLINE:
                by_status = Device.id.not_in(list(statuses)) if statuses else None
            elif not ids:
                return CameraPage(rows=[], total=0)
            else:
                by_status = Device.id.is_in(ids)
            if by_status is not None:
                condition = by_status if condition is None else condition & by_status
        query = Device.select().order_by(Device.created_at)
        count = Device.count()
        if condition is not None:
            query, count = query.where(condition), count.where(condition)
        rows = await query.offset((page - 1) * limit).limit(limit)
        records = [_record(r) for r in rows]
        return CameraPage(
            rows=[(r, statuses.get(r.id, CameraStatus.OFFLINE)) for r in records],
            total=await count)

    async def status_counts(self) -> dict[CameraStatus, int]:
        """How many cameras are online, offline and in error."""
        statuses = await _streaming_statuses()
        counts = {value: 0 for value in CameraStatus}
        for value in statuses.values():
            counts[value] += 1
        counts[CameraStatus.OFFLINE] = await Device.count() - len(statuses)
        return counts

    async def get(self, device_id: uuid.UUID) -> DeviceRecord:
        row: dict[str, Any] | None = await Device.select().where(Device.id == device_id).first()
        if row is None:
            raise NotFound(f"Device {device_id} not found")
        return _record(row)

    async def create(self, changes: DeviceChanges) -> DeviceRecord:
        values = self._values(changes, None)
        await self.check_url(values["rtsp_url"])
        device = Device(id=uuid.uuid4(), created_at=utcnow(), is_active=False, **values)
        await device.save()
        return await self.get(device.id)

    async def update(self, device_id: uuid.UUID, changes: DeviceChanges) -> DeviceRecord:
        current = await self.get(device_id)
        values = self._values(changes, current)
        if "rtsp_url" in values:
            await self.check_url(values["rtsp_url"])
        if values:
            values["updated_at"] = utcnow()
            await Device.update(values).where(Device.id == device_id)
        return await self.get(device_id)

    async def delete(self, device_id: uuid.UUID) -> None:
        await self.get(device_id)
        # The one read of another service's table: `core.streams` builds on this module
        # (a stream needs its camera), so asking it here would be an import cycle.
        if await Stream.exists().where(
            (Stream.camera_id == device_id) & Stream.state.is_in(list(ACTIVE_STATES))
        ):
            raise Conflict("Device has an active stream; stop it before deleting the device")
        await Device.delete().where(Device.id == device_id)
        for forget in self._on_delete:
            await forget(device_id)

    async def check_url(self, url: str) -> PinnedUrl:
        """The camera URL guard (`core.camera_urls`): `CameraUrlRefused` (400) with the
        reason, or the URL pinned to the address it resolved to. Connects to nothing."""
        return await asyncio.to_thread(check_camera_url, url, self.policy)

    def public_url(self, row: DeviceRecord) -> str:
        """The URL as responses and logs show it: password masked."""
        return with_password(row.rtsp_url, self._password(row), masked=True)

    def source_url(self, row: DeviceRecord) -> str:
        """The URL ingest connects to, password included. Never log or return it."""
        return with_password(row.rtsp_url, self._password(row), masked=False)

    def _password(self, row: DeviceRecord) -> str | None:
        return self._box.open(row.rtsp_secret) if row.rtsp_secret else None

    def _values(self, changes: DeviceChanges, current: DeviceRecord | None) -> dict[Any, Any]:
        creating = current is None
        values: dict[Any, Any] = {}
        name = clean_text(changes.name, "name", 255, required=creating)
        if name is not None:
            if not name:
                raise InvalidInput("name must not be empty")
            values["name"] = name
        for field, limit in (("description", 4000), ("location", 255)):
            multiline = field == "description"
            value = clean_text(getattr(changes, field), field, limit, multiline=multiline)
            if value is not None:
                values[field] = value
        credentials = changes.username is not None or changes.password is not None
        if changes.rtsp_url is not None or creating or credentials:
            if changes.rtsp_url is not None:
                url, password = split_rtsp_url(changes.rtsp_url.strip())
            elif current is not None:
                url, password = current.rtsp_url, self._password(current)
            else:
                raise InvalidInput("rtsp_url is required", details={"field": "rtspUrl"})
            if changes.username is not None:
                url = _with_username(url, clean_text(changes.username, "username", 255) or "")
            if changes.password is not None:
                if len(changes.password) > 1024:
                    raise InvalidInput("password must be at most 1024 characters",
                                       details={"field": "password"})
                password = changes.password or None
            values["rtsp_url"] = url
            values["rtsp_secret"] = self._box.seal(password) if password is not None else None
        for field in ("ip_address", "model", "settings"):
            value = getattr(changes, field)
            if value is not None:
                values[field] = _checked(field, value)
        if changes.rtsp_transport is not None:
            if changes.rtsp_transport not in TRANSPORTS:
                raise InvalidInput("rtsp_transport must be 'tcp' or 'udp'")
            values["rtsp_transport"] = changes.rtsp_transport
        return values


def _with_username(url: str, username: str) -> str:
    """`url` with its user name replaced ("" removes it)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}@{host}" if username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


_CAMERA_SETTINGS = {"resolution": str, "framerate": int,
                    # WebRTC transcoding (docs/codecs.md): auto | always | never, and the
                    # size and bitrate of the transcoded H.264 (with `always`).
                    "transcode": str, "transcode_width": int, "transcode_height": int,
                    "transcode_kbps": int}
TRANSCODE_MODES = ("auto", "always", "never")
_TRANSCODE_BOUNDS = {"transcode_width": (16, 7680), "transcode_height": (16, 4320),
                     "transcode_kbps": (100, 50_000)}


def _checked(field: str, value: Any) -> Any:
    """An OmniSight camera field's value, checked (InvalidInput names the field)."""
    if field == "settings":
        if not isinstance(value, dict):
            raise InvalidInput("settings must be an object", details={"field": "settings"})
        for key, item in value.items():
            kind = _CAMERA_SETTINGS.get(key)
            if kind is None:
                raise InvalidInput(f"settings.{key} is not a camera setting",
                                   details={"field": f"settings.{key}"})
            if item is not None and (not isinstance(item, kind) or isinstance(item, bool)):
                raise InvalidInput(f"settings.{key} must be a {kind.__name__}",
                                   details={"field": f"settings.{key}"})
        if isinstance(value.get("framerate"), int) and not 1 <= value["framerate"] <= 240:
            raise InvalidInput("settings.framerate must be 1-240",
                               details={"field": "settings.framerate"})
        if value.get("transcode") is not None and value["transcode"] not in TRANSCODE_MODES:
            raise InvalidInput("settings.transcode must be auto, always or never",
                               details={"field": "settings.transcode"})
        for key, (low, high) in _TRANSCODE_BOUNDS.items():
            if isinstance(value.get(key), int) and not low <= value[key] <= high:
                raise InvalidInput(f"settings.{key} must be {low}-{high}",
                                   details={"field": f"settings.{key}"})
        if len(str(value.get("resolution") or "")) > 32:
            raise InvalidInput("settings.resolution must be at most 32 characters",
                               details={"field": "settings.resolution"})
        return {k: v for k, v in value.items() if v is not None}
    name = "ipAddress" if field == "ip_address" else field
    text = clean_text(str(value), name, 255) or None
    if field == "ip_address" and text is not None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise InvalidInput("ipAddress must be an IPv4 or IPv6 address",
                               details={"field": "ipAddress"}) from None
    return text
