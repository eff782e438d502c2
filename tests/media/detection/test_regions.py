"""Normalized region polygons: validation, point-in-polygon, the bottom-centre rule."""

from __future__ import annotations

import numpy as np
import pytest

from media.detection.boxes import Box
from media.detection.objects import Detection
from media.detection.regions import (
    InvalidRegionError,
    Region,
    box_counts,
    filter_in_regions,
    point_in_polygon,
    region_mask,
)

FRAME = (640, 360)
DRIVEWAY = Region.from_coordinates([[0.1, 0.4], [0.9, 0.4], [0.9, 0.9], [0.1, 0.9]])
TRIANGLE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))


@pytest.mark.parametrize(
    ("coordinates", "reason"),
    [
        ([[0, 0], [1, 0]], "at least 3 points"),
        ([[0, 0], [1, 0], [1, 1.2]], "outside 0..1"),
        ([[0, 0], [1, 0], [-0.1, 1]], "outside 0..1"),
        ([[0, 0], [1, 0], [float("nan"), 1]], "outside 0..1"),
        ([[0, 0], [1, 0], [0.5]], "not an \\[x, y\\] pair"),
        ([[0, 0], [0.5, 0.5], [1, 1]], "no area"),
        ([[0.2, 0.2], [0.2, 0.2], [0.8, 0.8], [0.2, 0.8]], "are equal"),
        ([[0, 0], [1, 1], [1, 0], [0, 1]], "cross"),  # a bow tie
    ],
)
def test_unusable_polygons_are_refused(coordinates: list[list[float]], reason: str) -> None:
    with pytest.raises(InvalidRegionError, match=reason):
        Region.from_coordinates(coordinates)


def test_full_frame_and_concave_polygons_are_accepted() -> None:
    full = Region.from_coordinates([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert full.contains(0, 0) and full.contains(1, 1) and full.contains(0.5, 0.5)
    # An L shape: the notch at the top right is outside.
    ell = Region.from_coordinates([[0, 0], [0.5, 0], [0.5, 0.5], [1, 0.5], [1, 1], [0, 1]])
    assert ell.contains(0.25, 0.25) and ell.contains(0.75, 0.75)
    assert not ell.contains(0.75, 0.25)


def test_point_in_polygon_counts_edges_as_inside() -> None:
    assert point_in_polygon((0.5, 0.5), TRIANGLE)  # on the hypotenuse
    assert point_in_polygon((0.0, 0.3), TRIANGLE)
    assert point_in_polygon((0.2, 0.2), TRIANGLE)
    assert not point_in_polygon((0.6, 0.6), TRIANGLE)


def test_an_object_counts_by_the_bottom_centre_of_its_box() -> None:
    # A person whose head is above the driveway region but whose feet are in it counts...
    standing_in = Box(300, 50, 60, 200)  # bottom centre (330, 250) -> (0.52, 0.69)
    assert box_counts(standing_in, FRAME, [DRIVEWAY])
    # ...one whose box overlaps the region but whose feet are above it does not.
    feet_above = Box(300, 0, 60, 140)  # bottom centre (330, 140) -> y 0.39 < 0.4
    assert not box_counts(feet_above, FRAME, [DRIVEWAY])
    # Feet beside the region.
    beside = Box(10, 200, 40, 100)  # x 30 -> 0.05 < 0.1
    assert not box_counts(beside, FRAME, [DRIVEWAY])


def test_only_enabled_regions_count_and_none_enabled_means_the_whole_frame() -> None:
    porch = Region.from_coordinates([[0.4, 0.1], [0.6, 0.1], [0.6, 0.3], [0.4, 0.3]])
    on_porch = Box(300, 40, 20, 50)  # bottom centre (310, 90) -> (0.48, 0.25)
    assert box_counts(on_porch, FRAME, [DRIVEWAY, porch])
    disabled_porch = Region(porch.points, enabled=False)
    assert not box_counts(on_porch, FRAME, [DRIVEWAY, disabled_porch])
    assert box_counts(on_porch, FRAME, [disabled_porch])
    assert box_counts(on_porch, FRAME, [])


def test_filter_keeps_detections_inside() -> None:
    inside = Detection("person", 0.9, Box(300, 50, 60, 200))
    outside = Detection("vehicle", 0.9, Box(300, 0, 60, 100))
    kept = filter_in_regions([inside, outside], lambda d: d.box, FRAME, [DRIVEWAY])
    assert kept == [inside]


def test_region_mask_rasterizes_enabled_regions() -> None:
    mask = region_mask([DRIVEWAY], 100, 50)
    assert mask is not None and mask.shape == (50, 100)
    assert mask[35, 50] == 255 and mask[5, 50] == 0 and mask[35, 2] == 0
    assert region_mask([Region(DRIVEWAY.points, enabled=False)], 100, 50) is None
    assert np.count_nonzero(region_mask([DRIVEWAY], 100, 50)) > 0
