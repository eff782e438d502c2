"""Errors of the snapshot and clip cutters (``media.snapshot``, ``media.clip``).

Kept apart from ``media.errors`` (which classifies RTSP source failures): these are about
recorded or cached footage, and the API maps them differently (a missing recording is a
404-like "nothing there", not an upstream failure).
"""

from __future__ import annotations


class MediaCutError(Exception):
    """A snapshot or clip could not be made from the footage given."""


class NoFootageError(MediaCutError):
    """No recorded segment (or cached GOP) covers the requested time."""


class SnapshotError(MediaCutError):
    """The footage holds no keyframe or nothing in it decodes to a picture."""
