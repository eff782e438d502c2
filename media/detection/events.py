"""Merging detections over time into events: one continuous motion or one object track
makes one event, not one per analysed frame.

The rule (a cool-down): an event of a type (``motion``, ``person``, ``vehicle``,
``animal``) opens with the first detection of that type on a camera. Each later detection
of the same type that comes at most ``cooldown`` seconds after the previous one belongs
to the same event and extends it. When ``cooldown`` seconds pass without one, the event
closes; its end is the time of its last detection. The next detection opens a new event.

There is no tracker: on one camera, two people seen at the same time, or one after the
other with less than ``cooldown`` between them, are one ``person`` event. Types are
independent (a person walking through makes a ``motion`` and a ``person`` event).

Pure and clock-free: times are passed in (the frame's wall-clock time), nothing sleeps, and
the same inputs always give the same transitions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Literal

from media.detection.boxes import Box

DEFAULT_COOLDOWN = 10.0

Change = Literal["opened", "updated", "closed"]


@dataclass(frozen=True, slots=True)
class Event:
    """One merged event. ``best_*`` describe the most confident detection so far (the one
    a thumbnail should show); ``end`` is None while the event is open."""

    number: int
    kind: str
    start: float
    last: float
    detections: int
    best_confidence: float
    best_box: Box | None
    best_time: float
    end: float | None = None

    @property
    def open(self) -> bool:
        """Whether more detections can still join this event."""
        return self.end is None


@dataclass(frozen=True, slots=True)
class Transition:
    """What an input did to an event: ``opened`` (new event), ``updated`` (a detection with
    a higher confidence than any before; worth storing), or ``closed``."""

    change: Change
    event: Event


@dataclass
class EventMerger:
    """The cool-down state machine for one camera (see the module docstring)."""

    cooldown: float = DEFAULT_COOLDOWN
    _open: dict[str, Event] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if self.cooldown <= 0:
            raise ValueError(f"cooldown {self.cooldown} must be positive")

    @property
    def open_events(self) -> list[Event]:
        """The events still open, oldest first."""
        return sorted(self._open.values(), key=lambda event: event.start)

    def observe(
        self, kind: str, time: float, confidence: float = 1.0, box: Box | None = None
    ) -> list[Transition]:
        """A detection of ``kind`` at ``time``. Returns what changed: events of any type
        that timed out before ``time`` close first, then this one opens or joins one.

        Times must not go backwards by more than the cool-down (a late detection within it
        still joins its event; older ones are ignored).
        """
        transitions = self.expire(time)
        current = self._open.get(kind)
        if current is None:
            event = Event(next(self._numbers), kind, time, time, 1, confidence, box, time)
            self._open[kind] = event
            return [*transitions, Transition("opened", event)]
        if time < current.last - self.cooldown:
            return transitions
        better = confidence > current.best_confidence
        event = replace(
            current,
            last=max(current.last, time),
            detections=current.detections + 1,
            best_confidence=confidence if better else current.best_confidence,
            best_box=box if better else current.best_box,
            best_time=time if better else current.best_time,
        )
        self._open[kind] = event
        if better:
            transitions.append(Transition("updated", event))
        return transitions

    def expire(self, now: float) -> list[Transition]:
        """Close the events whose last detection is more than ``cooldown`` before ``now``.
        Call it on every analysed frame, with or without detections."""
        closed = []
        for kind, event in list(self._open.items()):
            if now - event.last > self.cooldown:
                del self._open[kind]
                closed.append(Transition("closed", replace(event, end=event.last)))
        return sorted(closed, key=lambda transition: transition.event.start)

    def close_all(self) -> list[Transition]:
        """Close every open event now (the stream stops or detection is turned off)."""
        closed = [
            Transition("closed", replace(event, end=event.last)) for event in self.open_events
        ]
        self._open.clear()
        return closed
