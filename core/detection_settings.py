"""Detection settings (OmniSight `/detection/settings`, `/cameras/:id/detection`): the global
defaults and each camera's own fields, validated strictly, merged into what a camera runs.

- The global document's `enabled`, `detectionInterval` and `minConfidence` ARE the system
  settings' `detection` section (`enabled`, `defaultSettings`): one value, two views. Its
  `regions`, `objectTypes` and `motionDetection` live in `vas_detection_setting` (scope
  "global").
- A camera stores only the fields it sets (scope = its id). Its effective settings are the
  global ones with the camera's fields on top: `regions` replace the global list as a whole,
  `objectTypes` replace the global entry of the same `type` (types the camera does not list
  keep the global entry), `motionDetection` is merged field by field, the rest replace.
- `PUT` of the global document changes the fields given; `PUT` of a camera's document
  replaces the camera's own fields with the body (a field left out follows the global; `{}`
  makes the camera follow the global entirely).

Polygon rules match `media.detection.regions` (core does not import media; the tests check
that the two agree).
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from core.clock import utcnow
from core.errors import InvalidInput
from core.system_settings import SystemSettingsService
from core.tables import DetectionSetting

OBJECT_TYPES = ("person", "vehicle", "animal")
FIELDS = ("enabled", "detectionInterval", "minConfidence", "regions", "objectTypes",
          "motionDetection")
SYSTEM_FIELDS = ("enabled", "detectionInterval", "minConfidence")  # in the system settings
GLOBAL_SCOPE = "global"
MAX_REGIONS = 16
MAX_POINTS = 64
MAX_NAME = 100
# minArea counts pixels of the motion analysis frame, 320 px wide (320x180 for 16:9,
# 320x240 for 4:3); 320x320 is the largest such frame.
MAX_MIN_AREA = 320 * 320
_MIN_TWICE_AREA = 1e-4  # as media.detection.regions: a polygon flatter than this is refused

DEFAULTS: dict[str, Any] = {
    "regions": [{"name": "Full Frame", "coordinates": [[0, 0], [1, 0], [1, 1], [0, 1]],
                 "enabled": True}],
    "objectTypes": [
        {"type": "person", "enabled": True, "minConfidence": 0.6},
        {"type": "vehicle", "enabled": True, "minConfidence": 0.7},
        {"type": "animal", "enabled": False, "minConfidence": 0.7},
    ],
    "motionDetection": {"enabled": True, "sensitivity": 0.5, "minArea": 500},
}


@dataclass(frozen=True, slots=True)
class RegionSetting:
    """A normalized polygon ([x, y] in 0..1, origin top-left) and whether it takes part."""

    name: str
    points: tuple[tuple[float, float], ...]
    enabled: bool


@dataclass(frozen=True, slots=True)
class ObjectTypeSetting:
    """Whether a kind of object makes events, and from which confidence."""

    type: str
    enabled: bool
    min_confidence: float


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """Motion detection: on/off, sensitivity 0..1, smallest blob in analysis-frame pixels."""

    enabled: bool
    sensitivity: float
    min_area: int


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """The settings one camera runs with (or the global defaults), typed."""

    enabled: bool
    interval_ms: int
    min_confidence: float
    regions: tuple[RegionSetting, ...]
    object_types: tuple[ObjectTypeSetting, ...]
    motion: MotionSettings
    document: dict[str, Any]  # the API's JSON form

    @property
    def objects_enabled(self) -> bool:
        """Whether any object type is on."""
        return any(kind.enabled for kind in self.object_types)

    @property
    def active(self) -> bool:
        """Whether detection has anything to do (and a node must decode frames)."""
        return self.enabled and (self.motion.enabled or self.objects_enabled)

    def as_document(self) -> dict[str, Any]:
        """A copy in the API's JSON shape."""
        return copy.deepcopy(self.document)


def _fail(path: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{path} {reason}", details={"field": path})


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _number(value: Any, path: str, low: float, high: float, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        integer and not isinstance(value, int)
    ) or not math.isfinite(value):
        raise _fail(path, "must be an integer" if integer else "must be a number")
    if not low <= value <= high:
        raise _fail(path, f"must be between {low:g} and {high:g}")
    return value


def _object(
    value: Any, path: str, keys: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    for key in value:
        if key not in keys:
            raise _fail(f"{path}.{key}" if path else key, "is not a known setting")
    for key in required:
        if key not in value:
            raise _fail(f"{path}.{key}" if path else key, "is required")
    return value


def _cross(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(_cross(a, b, p)) <= 1e-12 and min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and (
        min(a[1], b[1]) <= p[1] <= max(a[1], b[1]))


def _touch(a: tuple[float, float], b: tuple[float, float],
           c: tuple[float, float], d: tuple[float, float]) -> bool:
    o1, o2, o3, o4 = _cross(a, b, c), _cross(a, b, d), _cross(c, d, a), _cross(c, d, b)
    if (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0) and 0 not in (o1, o2, o3, o4):
        return True
    return _on(c, a, b) or _on(d, a, b) or _on(a, c, d) or _on(b, c, d)


def _polygon(value: Any, path: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_POINTS:
        raise _fail(path, f"must be a list of 3 to {MAX_POINTS} [x, y] points")
    points: list[tuple[float, float]] = []
    for index, point in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(point, list) or len(point) != 2:
            raise _fail(where, "must be an [x, y] pair")
        points.append((_number(point[0], where, 0, 1), _number(point[1], where, 0, 1)))
    count = len(points)
    for i in range(count):
        if points[i] == points[(i + 1) % count]:
            raise _fail(path, f"has equal consecutive points ({i} and {(i + 1) % count})")
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # neighbours share a corner
            if _touch(points[i], points[(i + 1) % count], points[j], points[(j + 1) % count]):
                raise _fail(path, f"is not a simple polygon: edges {i} and {j} cross")
    twice_area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2)
                     in zip(points, [*points[1:], points[0]], strict=True))
    if abs(twice_area) < _MIN_TWICE_AREA:
        raise _fail(path, "has no area (its points lie on a line)")
    return tuple(points)


def _regions(value: Any) -> tuple[RegionSetting, ...]:
    if not isinstance(value, list) or len(value) > MAX_REGIONS:
        raise _fail("regions", f"must be a list of at most {MAX_REGIONS} regions")
    regions = []
    for index, item in enumerate(value):
        path = f"regions[{index}]"
        region = _object(item, path, ("name", "coordinates", "enabled"), ("coordinates",))
        name = region.get("name", f"Region {index + 1}")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
            raise _fail(f"{path}.name", f"must be a text of 1 to {MAX_NAME} characters")
        points = _polygon(region["coordinates"], f"{path}.coordinates")
        enabled = _bool(region.get("enabled", True), f"{path}.enabled")
        regions.append(RegionSetting(name.strip(), points, enabled))
    return tuple(regions)


def _object_types(value: Any) -> tuple[ObjectTypeSetting, ...]:
    if not isinstance(value, list):
        raise _fail("objectTypes", "must be a list")
    kinds: dict[str, ObjectTypeSetting] = {}
    for index, item in enumerate(value):
        path = f"objectTypes[{index}]"
        entry = _object(item, path, ("type", "enabled", "minConfidence"), ("type",))
        kind = entry["type"]
        if kind not in OBJECT_TYPES:
            raise _fail(f"{path}.type", f"must be one of: {', '.join(OBJECT_TYPES)}")
        if kind in kinds:
            raise _fail(f"{path}.type", f"lists {kind} a second time")
        kinds[kind] = ObjectTypeSetting(
            kind, _bool(entry.get("enabled", True), f"{path}.enabled"),
            float(_number(entry.get("minConfidence", 0.6), f"{path}.minConfidence", 0, 1)))
    return tuple(kinds.values())


def _motion(value: Any, path: str = "motionDetection", *, partial: bool = False) -> dict[str, Any]:
    keys = ("enabled", "sensitivity", "minArea")
    motion = _object(value, path, keys, () if partial else keys)
    if "enabled" in motion:
        _bool(motion["enabled"], f"{path}.enabled")
    if "sensitivity" in motion:
        _number(motion["sensitivity"], f"{path}.sensitivity", 0, 1)
    if "minArea" in motion:
        _number(motion["minArea"], f"{path}.minArea", 1, MAX_MIN_AREA, integer=True)
    return motion


def check_fields(doc: Any, *, partial_motion: bool) -> dict[str, Any]:
    """Validate the fields present in `doc` (any subset of the document); the validated
    fields, normalized (region names trimmed, objectTypes complete)."""
    doc = _object(doc, "", FIELDS, ())
    out: dict[str, Any] = {}
    if "enabled" in doc:
        out["enabled"] = _bool(doc["enabled"], "enabled")
    if "detectionInterval" in doc:
        out["detectionInterval"] = _number(doc["detectionInterval"], "detectionInterval",
                                           100, 60_000, integer=True)
    if "minConfidence" in doc:
        out["minConfidence"] = _number(doc["minConfidence"], "minConfidence", 0, 1)
    if "regions" in doc:
        out["regions"] = [{"name": r.name, "coordinates": [list(p) for p in r.points],
                           "enabled": r.enabled} for r in _regions(doc["regions"])]
    if "objectTypes" in doc:
        out["objectTypes"] = [
            {"type": k.type, "enabled": k.enabled, "minConfidence": k.min_confidence}
            for k in _object_types(doc["objectTypes"])
        ]
    if "motionDetection" in doc:
        out["motionDetection"] = dict(_motion(doc["motionDetection"], partial=partial_motion))
    return out


def parse(doc: dict[str, Any]) -> DetectionSettings:
    """A complete document (every field) into the typed record."""
    checked = check_fields(doc, partial_motion=False)
    motion = checked["motionDetection"]
    return DetectionSettings(
        enabled=checked["enabled"], interval_ms=int(checked["detectionInterval"]),
        min_confidence=float(checked["minConfidence"]), regions=_regions(checked["regions"]),
        object_types=_object_types(checked["objectTypes"]),
        motion=MotionSettings(
            motion["enabled"], float(motion["sensitivity"]), int(motion["minArea"])
        ),
        document={key: checked[key] for key in FIELDS},
    )


def overlay(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """`base` (complete) with a camera's own fields on top (rules in the module docstring)."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        if key == "objectTypes":
            by_type = {entry["type"]: entry for entry in merged["objectTypes"]}
            by_type.update({entry["type"]: entry for entry in value})
            merged["objectTypes"] = [by_type[kind] for kind in OBJECT_TYPES if kind in by_type]
        elif key == "motionDetection":
            merged["motionDetection"] = {**merged["motionDetection"], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class DetectionSettingsService:
    """Reads and writes the global detection settings and each camera's own."""

    def __init__(self, system: SystemSettingsService) -> None:
        self._system = system

    async def global_settings(self, *, fresh: bool = False) -> DetectionSettings:
        """The global defaults."""
        return parse(await self._global_document(fresh=fresh))

    async def camera_settings(
        self, camera_id: uuid.UUID, *, fresh: bool = False
    ) -> DetectionSettings:
        """What the camera runs with: the global settings with its own fields on top."""
        base = await self._global_document(fresh=fresh)
        return parse(overlay(base, await self._stored(str(camera_id))))

    async def camera_own(self, camera_id: uuid.UUID) -> dict[str, Any]:
        """The fields the camera sets itself (the rest follows the global settings)."""
        return await self._stored(str(camera_id))

    async def update_global(self, changes: Any) -> DetectionSettings:
        """Change the given fields of the global settings (each checked before any write)."""
        checked = check_fields(changes, partial_motion=True)
        current = await self._global_document(fresh=True)
        settings = parse(overlay(current, checked))
        rest = {key: settings.document[key] for key in FIELDS if key not in SYSTEM_FIELDS}
        system = {key: checked[key] for key in SYSTEM_FIELDS if key in checked}
        if system:
            section: dict[str, Any] = {}
            if "enabled" in system:
                section["enabled"] = system["enabled"]
            defaults = {key: system[key] for key in ("detectionInterval", "minConfidence")
                        if key in system}
            if defaults:
                section["defaultSettings"] = defaults
            await self._system.update({"detection": section})
        await self._store(GLOBAL_SCOPE, rest)
        return settings

    async def update_camera(self, camera_id: uuid.UUID, own: Any) -> DetectionSettings:
        """Replace the camera's own fields with `own`; what it leaves out follows the global."""
        checked = check_fields(own, partial_motion=True)
        settings = parse(overlay(await self._global_document(fresh=True), checked))
        await self._store(str(camera_id), checked)
        return settings

    async def detection_active(self, camera_id: uuid.UUID, metrics: dict[str, Any] | None,
                               heartbeat_s: float, now: float) -> bool:
        """For camera status (`detectionActive`) of a LIVE stream: its effective settings
        have detection on with something to do, *and* its node really samples it: the
        stream's metrics (`metrics["detection"]`, reported every heartbeat) show a sample
        taken at most 2 x (interval + heartbeat) before `now` (Unix s)."""
        settings = await self.camera_settings(camera_id)
        detection = (metrics or {}).get("detection")
        if not settings.active or not isinstance(detection, dict):
            return False
        sampled = detection.get("last_sample_at")
        window = 2 * (settings.interval_ms / 1000 + heartbeat_s)
        return isinstance(sampled, (int, float)) and sampled > 0 and now - sampled <= window

    async def forget_camera(self, camera_id: uuid.UUID) -> None:
        """Drop a camera's own settings (the camera was deleted)."""
        await DetectionSetting.delete().where(DetectionSetting.scope == str(camera_id))

    async def _global_document(self, *, fresh: bool) -> dict[str, Any]:
        system = await self._system.get(fresh=fresh)
        doc = {"enabled": system.detection.enabled,
               "detectionInterval": system.detection.detection_interval_ms,
               "minConfidence": system.detection.min_confidence}
        doc.update(copy.deepcopy(DEFAULTS))
        stored = await self._stored(GLOBAL_SCOPE)
        return overlay(doc, {key: stored[key] for key in DEFAULTS if key in stored})

    async def _stored(self, scope: str) -> dict[str, Any]:
        row = await DetectionSetting.select(DetectionSetting.value).where(
            DetectionSetting.scope == scope).first()
        value = row["value"] if row else {}
        if isinstance(value, str):
            value = json.loads(value)
        return value if isinstance(value, dict) else {}

    async def _store(self, scope: str, value: dict[str, Any]) -> None:
        await DetectionSetting.insert(
            DetectionSetting(scope=scope, value=value, updated_at=utcnow())
        ).on_conflict(target=DetectionSetting.scope, action="DO UPDATE",
                      values=[DetectionSetting.value, DetectionSetting.updated_at])
