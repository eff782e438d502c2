"""Planning recording segments on keyframes (pure arithmetic)."""

from __future__ import annotations

from media.segment_export import plan_pieces

KEYS = [100.0 + k for k in range(0, 36)]  # a keyframe every second, 100..135


def test_pieces_of_about_the_duration_start_on_keyframes_and_chain():
    pieces = plan_pieces(KEYS, 100.4, 135.5, 10, final=True)
    assert pieces == [(101.0, 111.0), (111.0, 121.0), (121.0, 131.0), (131.0, 135.5)]


def test_until_final_only_pieces_whose_end_is_recorded():
    assert plan_pieces(KEYS, 100.0, 135.5, 10, final=False) == [
        (100.0, 110.0), (110.0, 120.0), (120.0, 130.0)]
    assert plan_pieces(KEYS[:9], 100.0, 109.0, 10, final=False) == []


def test_boundary_is_the_keyframe_nearest_the_target():
    keys = [0.0, 4.0, 9.5, 13.0, 18.0, 21.0]  # 19.5 is 1.5 from 18 and from 21
    assert plan_pieces(keys, 0.0, 22.0, 10, final=False) == [(0.0, 9.5), (9.5, 21.0)]  # a tie goes to the later one


def test_a_start_stored_with_lost_digits_is_still_its_keyframe_and_tiny_tails_drop():
    assert plan_pieces(KEYS, 110.0000004, 120.2, 10, final=True) == [(110.0, 120.0)]
    assert plan_pieces([], 0.0, 10.0, 10, final=True) == []
