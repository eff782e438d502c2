"""Cameras (the guide's V1 devices): validation, storage with the password sealed, lookup."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from core.camera_urls import CameraPolicy, PinnedUrl, check_camera_url
from core.clock import utcnow
from core.credentials import CredentialBox, split_rtsp_url, with_password
from core.errors import Conflict, InvalidInput, NotFound
from core.stream_states import ACTIVE_STATES
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


def _record(row: dict[str, Any]) -> DeviceRecord:
    transport: Transport = "udp" if row["rtsp_transport"] == "udp" else "tcp"
    return DeviceRecord(**{**row, "rtsp_transport": transport,
                           "is_active": bool(row["is_active"])})


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    """Fields a create or update may set; None means "leave as is" on update."""

    name: str | None = None
    description: str | None = None
    rtsp_url: str | None = None
    location: str | None = None
    rtsp_transport: str | None = None


async def device_name(device_id: uuid.UUID) -> str:
    """The camera's name (404 when there is no such camera)."""
    row = await Device.select(Device.name).where(Device.id == device_id).first()
    if row is None:
        raise NotFound(f"Device {device_id} not found")
    return str(row["name"])


async def mark_active(device_id: uuid.UUID, active: bool) -> None:
    """`is_active`: whether the camera has a stream (the stream registry keeps it)."""
    await Device.update({Device.is_active: active}).where(Device.id == device_id)


class DeviceService:
    """Create, read, update and delete cameras; hand out their real URL only to ingest."""

    def __init__(self, box: CredentialBox, policy: CameraPolicy | None = None) -> None:
        self._box = box
        self.policy = policy or CameraPolicy()

    async def page(self, skip: int, limit: int) -> list[DeviceRecord]:
        rows: list[dict[str, Any]] = await Device.select().order_by(Device.created_at).offset(
            skip
        ).limit(limit)
        return [_record(r) for r in rows]

    async def get(self, device_id: uuid.UUID) -> DeviceRecord:
        row: dict[str, Any] | None = await Device.select().where(Device.id == device_id).first()
        if row is None:
            raise NotFound(f"Device {device_id} not found")
        return _record(row)

    async def create(self, changes: DeviceChanges) -> DeviceRecord:
        values = self._values(changes, creating=True)
        await self.check_url(values["rtsp_url"])
        device = Device(id=uuid.uuid4(), created_at=utcnow(), is_active=False, **values)
        await device.save()
        return await self.get(device.id)

    async def update(self, device_id: uuid.UUID, changes: DeviceChanges) -> DeviceRecord:
        await self.get(device_id)
        values = self._values(changes, creating=False)
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

    def _values(self, changes: DeviceChanges, *, creating: bool) -> dict[Any, Any]:
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
        if changes.rtsp_url is not None or creating:
            if changes.rtsp_url is None:
                raise InvalidInput("rtsp_url is required")
            url, password = split_rtsp_url(changes.rtsp_url.strip())
            values["rtsp_url"] = url
            values["rtsp_secret"] = self._box.seal(password) if password is not None else None
        if changes.rtsp_transport is not None:
            if changes.rtsp_transport not in TRANSPORTS:
                raise InvalidInput("rtsp_transport must be 'tcp' or 'udp'")
            values["rtsp_transport"] = changes.rtsp_transport
        return values
