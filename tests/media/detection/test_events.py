"""The cool-down rule that merges detections into events."""

from __future__ import annotations

import pytest

from media.detection.boxes import Box
from media.detection.events import EventMerger


def changes(transitions: list) -> list[tuple[str, str]]:
    return [(t.change, t.event.kind) for t in transitions]


def test_continuous_detections_make_one_event() -> None:
    merger = EventMerger(cooldown=5)
    assert changes(merger.observe("motion", 100.0)) == [("opened", "motion")]
    for second in range(101, 130):  # a detection every second for half a minute
        assert merger.observe("motion", float(second)) == []
    assert changes(merger.expire(134.0)) == []  # 4 s after the last one: still open
    closed = merger.expire(135.5)
    assert changes(closed) == [("closed", "motion")]
    event = closed[0].event
    assert (event.start, event.end, event.detections) == (100.0, 129.0, 30)
    assert not event.open and merger.open_events == []


def test_a_gap_longer_than_the_cooldown_starts_a_new_event() -> None:
    merger = EventMerger(cooldown=5)
    first = merger.observe("person", 10.0)[0].event
    merger.observe("person", 15.0)  # exactly the cool-down later: the same event
    transitions = merger.observe("person", 20.5)  # 5.5 s after: closes, then opens anew
    assert changes(transitions) == [("closed", "person"), ("opened", "person")]
    assert transitions[0].event.number == first.number and transitions[0].event.end == 15.0
    assert transitions[1].event.number != first.number


def test_types_are_merged_independently() -> None:
    merger = EventMerger(cooldown=5)
    merger.observe("motion", 0.0)
    merger.observe("person", 1.0)
    merger.observe("motion", 4.0)
    assert [e.kind for e in merger.open_events] == ["motion", "person"]
    # At 6.5 s the person (last seen at 1 s) has timed out, the motion (4 s) has not.
    assert changes(merger.expire(6.5)) == [("closed", "person")]
    assert changes(merger.close_all()) == [("closed", "motion")]


def test_a_better_detection_updates_the_event_best() -> None:
    merger = EventMerger(cooldown=5)
    merger.observe("person", 0.0, 0.6, Box(0, 0, 10, 20))
    transitions = merger.observe("person", 1.0, 0.9, Box(5, 5, 10, 20))
    assert changes(transitions) == [("updated", "person")]
    event = transitions[0].event
    assert (event.best_confidence, event.best_box, event.best_time) == (0.9, Box(5, 5, 10, 20), 1.0)
    assert merger.observe("person", 2.0, 0.7, Box(9, 9, 1, 1)) == []  # not better: silent
    assert merger.open_events[0].best_confidence == 0.9
    assert merger.open_events[0].detections == 3


def test_late_and_stale_detections() -> None:
    merger = EventMerger(cooldown=5)
    merger.observe("motion", 100.0)
    merger.observe("motion", 103.0)
    assert merger.observe("motion", 101.0) == []  # late but within the cool-down: joins
    assert merger.open_events[0].last == 103.0
    assert merger.open_events[0].detections == 3
    assert merger.observe("motion", 90.0) == []  # older than the cool-down: ignored
    assert merger.open_events[0].detections == 3


def test_cooldown_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventMerger(cooldown=0)
