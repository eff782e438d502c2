"""System settings (OmniSight `/system/settings`): stored in the database, so every process
(API, workers, media nodes) reads the same values, validated on every write.

Each section is one row of `vas_setting` holding the section as the API shows it (camelCase
JSON); `SystemSettings` is the typed record the features read (`SystemSettingsService.get`).
`storage.recordingsPath` is not stored: it is the real recordings directory, read-only.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clock import utcnow
from core.errors import InvalidInput
from core.tables import Setting
from core.users import EMAIL

SECTIONS = ("storage", "notifications", "detection", "recording")
RECORDING_FORMATS = ("mp4", "ts")
MAX_RECIPIENTS = 50
# (low, high) of every number, by its path in the document; see docs/omnisight.md.
RANGES: dict[str, tuple[float, float]] = {
    "storage.maxUsage": (1, 100),
    "storage.retentionDays": (1, 3650),
    "detection.defaultSettings.detectionInterval": (100, 60_000),
    "detection.defaultSettings.minConfidence": (0.0, 1.0),
    "recording.defaultSegmentDuration": (10, 3600),
}
DEFAULTS: dict[str, Any] = {
    "storage": {"maxUsage": 90, "retentionDays": 7, "autoCleanup": True},
    "notifications": {"email": {"enabled": False, "recipients": []}, "push": {"enabled": False}},
    "detection": {
        "enabled": True, "defaultSettings": {"detectionInterval": 1000, "minConfidence": 0.6},
    },
    "recording": {"enabled": True, "defaultSegmentDuration": 600, "defaultFormat": "mp4"},
}


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Disk use limit (% of the disk), retention, and whether old recordings are removed."""

    recordings_path: str
    max_usage: int
    retention_days: int
    auto_cleanup: bool


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """Who is told about system notifications, and how."""

    email_enabled: bool
    email_recipients: tuple[str, ...]
    push_enabled: bool


@dataclass(frozen=True, slots=True)
class DetectionDefaults:
    """Defaults for cameras whose detection settings do not say otherwise."""

    enabled: bool
    detection_interval_ms: int
    min_confidence: float


@dataclass(frozen=True, slots=True)
class RecordingDefaults:
    """Defaults for recordings started without settings of their own."""

    enabled: bool
    default_segment_duration_s: int
    default_format: str


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """The system settings, typed, as every feature reads them."""

    storage: StorageSettings
    notifications: NotificationSettings
    detection: DetectionDefaults
    recording: RecordingDefaults
    document: dict[str, Any]  # the API's JSON form, recordingsPath included

    def as_document(self) -> dict[str, Any]:
        """A copy of the settings in the API's JSON shape."""
        return copy.deepcopy(self.document)


def _fail(path: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{path} {reason}", details={"field": path})


def _merge(base: dict[str, Any], changes: dict[str, Any], path: str) -> dict[str, Any]:
    """`base` with `changes` applied key by key (objects merged, other values replaced)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        where = f"{path}.{key}" if path else key
        if key not in base:
            raise _fail(where, "is not a known setting")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise _fail(where, "must be an object")
            merged[key] = _merge(base[key], value, where)
        else:
            merged[key] = value
    return merged


def _bool(doc: dict[str, Any], path: str) -> bool:
    value = _at(doc, path)
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _number(doc: dict[str, Any], path: str, *, integer: bool) -> float:
    value = _at(doc, path)
    low, high = RANGES[path]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        integer and not isinstance(value, int)
    ) or not math.isfinite(value):
        raise _fail(path, "must be an integer" if integer else "must be a number")
    if not low <= value <= high:
        raise _fail(path, f"must be between {low:g} and {high:g}")
    return value


def _at(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


def _recipients(doc: dict[str, Any]) -> tuple[str, ...]:
    path = "notifications.email.recipients"
    value = _at(doc, path)
    if not isinstance(value, list) or len(value) > MAX_RECIPIENTS:
        raise _fail(path, f"must be a list of at most {MAX_RECIPIENTS} email addresses")
    for item in value:
        if not isinstance(item, str) or len(item) > 254 or not EMAIL.match(item.strip()):
            raise _fail(path, "must hold valid email addresses only")
    return tuple(dict.fromkeys(item.strip() for item in value))


def parse(doc: dict[str, Any], recordings_path: str) -> SystemSettings:
    """Validate a full settings document (every section present) into the typed record."""
    fmt = _at(doc, "recording.defaultFormat")
    if fmt not in RECORDING_FORMATS:
        raise _fail("recording.defaultFormat", f"must be one of: {', '.join(RECORDING_FORMATS)}")
    recipients = _recipients(doc)
    document = copy.deepcopy(doc)
    document["notifications"]["email"]["recipients"] = list(recipients)
    document["storage"] = {"recordingsPath": recordings_path, **document["storage"]}
    return SystemSettings(
        storage=StorageSettings(
            recordings_path=recordings_path,
            max_usage=int(_number(doc, "storage.maxUsage", integer=True)),
            retention_days=int(_number(doc, "storage.retentionDays", integer=True)),
            auto_cleanup=_bool(doc, "storage.autoCleanup"),
        ),
        notifications=NotificationSettings(
            email_enabled=_bool(doc, "notifications.email.enabled"),
            email_recipients=recipients,
            push_enabled=_bool(doc, "notifications.push.enabled"),
        ),
        detection=DetectionDefaults(
            enabled=_bool(doc, "detection.enabled"),
            detection_interval_ms=int(
                _number(doc, "detection.defaultSettings.detectionInterval", integer=True)
            ),
            min_confidence=float(
                _number(doc, "detection.defaultSettings.minConfidence", integer=False)
            ),
        ),
        recording=RecordingDefaults(
            enabled=_bool(doc, "recording.enabled"),
            default_segment_duration_s=int(
                _number(doc, "recording.defaultSegmentDuration", integer=True)
            ),
            default_format=str(fmt),
        ),
        document=document,
    )


class SystemSettingsService:
    """Reads (cached briefly per process) and updates the system settings."""

    CACHE_S = 2.0

    def __init__(self, recordings_path: Path) -> None:
        self._path = str(recordings_path)
        self._cached: tuple[float, SystemSettings] | None = None

    async def get(self, *, fresh: bool = False) -> SystemSettings:
        """The current settings (defaults for sections never written); `fresh` reads the
        database rather than this process's short cache."""
        if not fresh and self._cached is not None and self._cached[0] > time.monotonic():
            return self._cached[1]
        settings = parse(await self._stored(), self._path)
        self._cached = (time.monotonic() + self.CACHE_S, settings)
        return settings

    async def update(self, changes: dict[str, Any]) -> SystemSettings:
        """Apply the given sections (and, inside them, only the given fields)."""
        changes = copy.deepcopy(changes)
        storage = changes.get("storage")
        if (isinstance(storage, dict) and "recordingsPath" in storage
                and storage.pop("recordingsPath") != self._path):
            raise _fail("storage.recordingsPath",
                        "is read-only: it is the recordings directory of this installation")
        current = await self._stored()
        merged = _merge(current, changes, "")
        settings = parse(merged, self._path)  # validates every value before anything is written
        now = utcnow()
        for section in SECTIONS:
            if section in changes and merged[section] != current[section]:
                await Setting.insert(
                    Setting(key=section, value=merged[section], updated_at=now)
                ).on_conflict(
                    target=Setting.key, action="DO UPDATE",
                    values=[Setting.value, Setting.updated_at],
                )
        self._cached = (time.monotonic() + self.CACHE_S, settings)
        return settings

    async def _stored(self) -> dict[str, Any]:
        rows = await Setting.select(Setting.key, Setting.value).where(
            Setting.key.is_in(list(SECTIONS))
        )
        doc = copy.deepcopy(DEFAULTS)
        for row in rows:
            value = row["value"]
            if isinstance(value, str):
                value = json.loads(value)
            if isinstance(value, dict):
                # Merged over the defaults, so a field added in a later version has a value.
                doc[row["key"]] = _merge_lenient(doc[row["key"]], value)
        return doc


def _merge_lenient(base: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in stored.items():
        if key in base and isinstance(base[key], dict) and isinstance(value, dict):
            merged[key] = _merge_lenient(base[key], value)
        elif key in base:
            merged[key] = value
    return merged
