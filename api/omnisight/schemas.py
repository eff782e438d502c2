"""OmniSight request bodies (camelCase on the wire). msgspec checks types; core checks values."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

Secret = Annotated[str, msgspec.Meta(max_length=1024)]


class RegisterBody(msgspec.Struct):
    """POST /auth/register."""

    username: Annotated[str, msgspec.Meta(max_length=64)]
    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: Secret
    role: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class LoginBody(msgspec.Struct):
    """POST /auth/login."""

    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: Secret


class RefreshTokenBody(msgspec.Struct, rename="camel"):
    """POST /auth/refresh-token and POST /auth/logout."""

    refresh_token: Secret


class UserSettingsBody(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /users/me/settings: only `settings` (a `role` or any other key is refused)."""

    settings: dict[str, Any]


class _Section(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    pass


class StorageBody(_Section):
    recordings_path: str | UnsetType = UNSET
    max_usage: int | UnsetType = UNSET
    retention_days: int | UnsetType = UNSET
    auto_cleanup: bool | UnsetType = UNSET


class EmailBody(_Section):
    enabled: bool | UnsetType = UNSET
    recipients: Annotated[list[str], msgspec.Meta(max_length=50)] | UnsetType = UNSET


class PushBody(_Section):
    enabled: bool | UnsetType = UNSET


class NotificationsBody(_Section):
    email: EmailBody | UnsetType = UNSET
    push: PushBody | UnsetType = UNSET


class DetectionDefaultsBody(_Section):
    detection_interval: int | UnsetType = UNSET
    min_confidence: float | UnsetType = UNSET


class DetectionBody(_Section):
    enabled: bool | UnsetType = UNSET
    default_settings: DetectionDefaultsBody | UnsetType = UNSET


class RecordingBody(_Section):
    enabled: bool | UnsetType = UNSET
    default_segment_duration: int | UnsetType = UNSET
    default_format: str | UnsetType = UNSET


class SystemSettingsBody(_Section):
    """PUT /system/settings: the sections given are merged into the stored ones."""

    storage: StorageBody | UnsetType = UNSET
    notifications: NotificationsBody | UnsetType = UNSET
    detection: DetectionBody | UnsetType = UNSET
    recording: RecordingBody | UnsetType = UNSET


class RegionBody(_Section):
    coordinates: Annotated[list[list[float]], msgspec.Meta(max_length=64)]
    name: Annotated[str, msgspec.Meta(max_length=100)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class ObjectTypeBody(_Section):
    type: Annotated[str, msgspec.Meta(max_length=16)]
    enabled: bool | UnsetType = UNSET
    min_confidence: float | UnsetType = UNSET


class MotionDetectionBody(_Section):
    enabled: bool | UnsetType = UNSET
    sensitivity: float | UnsetType = UNSET
    min_area: int | UnsetType = UNSET


class DetectionSettingsBody(_Section):
    """PUT /detection/settings and PUT /cameras/:id/detection (core checks every value)."""

    enabled: bool | UnsetType = UNSET
    detection_interval: int | UnsetType = UNSET
    min_confidence: float | UnsetType = UNSET
    regions: Annotated[list[RegionBody], msgspec.Meta(max_length=16)] | UnsetType = UNSET
    object_types: Annotated[list[ObjectTypeBody], msgspec.Meta(max_length=3)] | UnsetType = UNSET
    motion_detection: MotionDetectionBody | UnsetType = UNSET
