"""OmniSight camera request bodies (camelCase). msgspec checks types; core checks values."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

Text = Annotated[str, msgspec.Meta(max_length=255)]


class CameraSettingsBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the camera is set to deliver; kept and shown (docs/omnisight.md)."""

    resolution: Annotated[str, msgspec.Meta(max_length=32)] | UnsetType = UNSET
    framerate: Annotated[int, msgspec.Meta(ge=1, le=240)] | UnsetType = UNSET


class CameraCreateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /cameras."""

    name: Text
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)]
    username: Text | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    ip_address: Text | None = None
    location: Text | None = None
    model: Text | None = None
    settings: CameraSettingsBody | None = None


class CameraUpdateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """PUT /cameras/:id: the fields given change, the others are kept."""

    name: Text | None = None
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    username: Text | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    ip_address: Text | None = None
    location: Text | None = None
    model: Text | None = None
    settings: CameraSettingsBody | None = None
