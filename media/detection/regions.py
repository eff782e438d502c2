"""Detection regions: normalized polygons that say where in the picture detection counts.

Coordinates are fractions of the frame, ``[x, y]`` with ``0 <= x, y <= 1`` and (0, 0) the
top-left corner, so a region does not depend on the resolution it is applied to.

The rules:

- Only *enabled* regions take part. When no region is enabled (or there are none), the
  whole frame counts: a disabled region stops restricting, it does not blank the camera.
- An object counts when the **bottom-centre** of its box (where a person or a vehicle
  touches the ground) lies inside an enabled region, edges included.
- Motion counts only for the changed pixels inside the enabled regions: the motion detector
  masks everything else away (:func:`region_mask`), so ``minArea`` counts inside pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from media.detection.boxes import Box

Point = tuple[float, float]

# Twice the area below which a polygon counts as flat (a line or a point): 1e-4 of the frame.
_MIN_AREA = 1e-4


class InvalidRegionError(ValueError):
    """A region's coordinates do not make a usable polygon (the message says why)."""


@dataclass(frozen=True, slots=True)
class Region:
    """One validated polygon; build with :meth:`from_coordinates`."""

    points: tuple[Point, ...]
    enabled: bool = True
    name: str = ""

    @classmethod
    def from_coordinates(
        cls, coordinates: Sequence[Sequence[float]], enabled: bool = True, name: str = ""
    ) -> Region:
        """Validate ``[[x, y], ...]`` and make a region; raise InvalidRegionError if unusable."""
        return cls(validate_polygon(coordinates), enabled, name)

    def contains(self, x: float, y: float) -> bool:
        """Whether the normalized point (x, y) is inside the polygon or on its edge."""
        return point_in_polygon((x, y), self.points)


def validate_polygon(coordinates: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """Check a normalized polygon and return it as a tuple of points.

    Rejected: fewer than 3 points, a point that is not a pair of finite numbers in 0..1,
    two consecutive equal points, a polygon with (almost) no area, and one whose edges
    cross each other (a bow tie): inside and outside would be ambiguous.
    """
    if len(coordinates) < 3:
        raise InvalidRegionError(f"a region needs at least 3 points, got {len(coordinates)}")
    points: list[Point] = []
    for index, point in enumerate(coordinates):
        if len(point) != 2:
            raise InvalidRegionError(f"point {index} is not an [x, y] pair: {list(point)!r}")
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x <= 1 and 0 <= y <= 1):
            raise InvalidRegionError(f"point {index} ({x}, {y}) is outside 0..1")
        points.append((x, y))
    count = len(points)
    for index in range(count):
        if points[index] == points[(index + 1) % count]:
            raise InvalidRegionError(f"points {index} and {(index + 1) % count} are equal")
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbours share a corner
            edge_i = (points[i], points[(i + 1) % count])
            if _segments_cross(*edge_i, points[j], points[(j + 1) % count]):
                raise InvalidRegionError(f"edges {i} and {j} cross each other")
    if abs(_twice_signed_area(points)) < _MIN_AREA:
        raise InvalidRegionError("the polygon has no area (its points lie on a line)")
    return tuple(points)


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; points on an edge count as inside."""
    x, y = point
    inside = False
    count = len(polygon)
    for index in range(count):
        (x1, y1), (x2, y2) = polygon[index], polygon[(index + 1) % count]
        if _on_segment(point, (x1, y1), (x2, y2)):
            return True
        if (y1 > y) != (y2 > y):
            crossing = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < crossing:
                inside = not inside
    return inside


def enabled_regions(regions: Iterable[Region]) -> list[Region]:
    """The regions that take part."""
    return [region for region in regions if region.enabled]


def box_counts(box: Box, frame_size: tuple[int, int], regions: Iterable[Region]) -> bool:
    """Whether an object box on a frame of ``frame_size`` (w, h) counts: its bottom-centre
    is inside an enabled region, or no region is enabled."""
    active = enabled_regions(regions)
    if not active:
        return True
    bx, by = box.bottom_centre
    # The bottom edge is the first row *below* the box; the last row of the object is one up.
    x, y = bx / frame_size[0], max(by - 1, 0) / frame_size[1]
    return any(region.contains(x, y) for region in active)


T = TypeVar("T")


def filter_in_regions(
    items: Iterable[T],
    box_of: Callable[[T], Box],
    frame_size: tuple[int, int],
    regions: Iterable[Region],
) -> list[T]:
    """Keep the items (boxes, detections) whose box counts (see :func:`box_counts`)."""
    regions = list(regions)
    return [item for item in items if box_counts(box_of(item), frame_size, regions)]


def region_mask(regions: Iterable[Region], width: int, height: int) -> npt.NDArray[np.uint8] | None:
    """A ``height`` x ``width`` mask, 255 inside the enabled regions and 0 outside; None when
    no region is enabled (the whole frame counts)."""
    active = enabled_regions(regions)
    if not active:
        return None
    mask = np.zeros((height, width), np.uint8)
    polygons = [
        np.array(
            [[round(x * (width - 1)), round(y * (height - 1))] for x, y in region.points], np.int32
        )
        for region in active
    ]
    cv2.fillPoly(mask, polygons, 255)
    return mask


def _twice_signed_area(points: Sequence[Point]) -> float:
    return sum(
        x1 * y2 - x2 * y1
        for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True)
    )


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    if abs(_orientation(a, b, p)) > 1e-12:
        return False
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ab and cd touch or cross (non-neighbouring polygon edges)."""
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0) != (o2 > 0)) and ((o3 > 0) != (o4 > 0)) and 0 not in (o1, o2, o3, o4):
        return True
    return (
        _on_segment(c, a, b) or _on_segment(d, a, b) or _on_segment(a, c, d) or _on_segment(b, c, d)
    )
