"""H.264 profile-level-id parsing and matching, as in mediasoup's `h264-profile-level-id`.

mediasoup and mediasoup-client decide whether a client can receive an H.264 stream with
these rules (themselves taken from libwebrtc): packetization modes must be equal, the
profiles (not the levels) must be the same, and an answer level can be generated. This is
a Python port of that package's parsing and answer logic, so that VAS accepts exactly the
clients mediasoup would.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class Profile(enum.IntEnum):
    """H.264 profiles known to WebRTC."""

    CONSTRAINED_BASELINE = 1
    BASELINE = 2
    MAIN = 3
    CONSTRAINED_HIGH = 4
    HIGH = 5
    PREDICTIVE_HIGH_444 = 6


# Level 1b has no level_idc of its own (it is 11 with constraint_set3): call it 0.
LEVEL_1B = 0
_LEVELS = {10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52}
_CONSTRAINT_SET3 = 0x10


@dataclass(frozen=True, slots=True)
class ProfileLevelId:
    """A parsed profile-level-id: a profile and a level (level_idc, or 0 for 1b)."""

    profile: Profile
    level: int


class _BitPattern:
    """Matches a byte against a pattern such as "x1xx0000" ('x' matches either bit)."""

    def __init__(self, pattern: str) -> None:
        self.mask = ~sum(1 << (7 - i) for i, c in enumerate(pattern) if c == "x") & 0xFF
        self.masked_value = sum(1 << (7 - i) for i, c in enumerate(pattern) if c == "1")

    def matches(self, value: int) -> bool:
        return (value & self.mask) == self.masked_value


# RFC 6184 section 8.1, in the order libwebrtc tries them.
_PROFILE_PATTERNS: tuple[tuple[int, _BitPattern, Profile], ...] = (
    (0x42, _BitPattern("x1xx0000"), Profile.CONSTRAINED_BASELINE),
    (0x4D, _BitPattern("1xxx0000"), Profile.CONSTRAINED_BASELINE),
    (0x58, _BitPattern("11xx0000"), Profile.CONSTRAINED_BASELINE),
    (0x42, _BitPattern("x0xx0000"), Profile.BASELINE),
    (0x58, _BitPattern("10xx0000"), Profile.BASELINE),
    (0x4D, _BitPattern("0x0x0000"), Profile.MAIN),
    (0x64, _BitPattern("00000000"), Profile.HIGH),
    (0x64, _BitPattern("00001100"), Profile.CONSTRAINED_HIGH),
    (0xF4, _BitPattern("00000000"), Profile.PREDICTIVE_HIGH_444),
)

# Used when the parameter is absent: libwebrtc's backwards-compatible default.
DEFAULT_PROFILE_LEVEL_ID = ProfileLevelId(Profile.CONSTRAINED_BASELINE, 31)

_PROFILE_PREFIX = {
    Profile.CONSTRAINED_BASELINE: "42e0",
    Profile.BASELINE: "4200",
    Profile.MAIN: "4d00",
    Profile.CONSTRAINED_HIGH: "640c",
    Profile.HIGH: "6400",
    Profile.PREDICTIVE_HIGH_444: "f400",
}
_LEVEL_1B_STRINGS = {
    Profile.CONSTRAINED_BASELINE: "42f00b",
    Profile.BASELINE: "42100b",
    Profile.MAIN: "4d100b",
}


def normalize(value: object) -> str | None:
    """The 6-hex-digit form of a profile-level-id parameter, or None when absent.

    sdp-transform turns an all-digit value such as 640028 into a number, so accept ints
    and restore their leading zeros.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid profile-level-id {value!r}")
    if isinstance(value, int):
        return f"{value:06d}"
    if isinstance(value, str):
        return value.strip().lower()
    raise ValueError(f"invalid profile-level-id {value!r}")


def parse_profile_level_id(value: object) -> ProfileLevelId | None:
    """Parse a profile-level-id (3 bytes in hex); None if it is not a known one."""
    text = normalize(value)
    if text is None or len(text) != 6:
        return None
    try:
        numeric = int(text, 16)
    except ValueError:
        return None
    if numeric == 0:
        return None
    level_idc = numeric & 0xFF
    profile_iop = (numeric >> 8) & 0xFF
    profile_idc = (numeric >> 16) & 0xFF
    if level_idc == 11:
        level = LEVEL_1B if profile_iop & _CONSTRAINT_SET3 else 11
    elif level_idc in _LEVELS:
        level = level_idc
    else:
        return None
    for idc, pattern, profile in _PROFILE_PATTERNS:
        if profile_idc == idc and pattern.matches(profile_iop):
            return ProfileLevelId(profile, level)
    return None


def profile_level_id_to_string(plid: ProfileLevelId) -> str:
    """The canonical string of a profile and level, e.g. "42e01f"."""
    if plid.level == LEVEL_1B:
        try:
            return _LEVEL_1B_STRINGS[plid.profile]
        except KeyError:
            raise ValueError(f"level 1b is not allowed for {plid.profile.name}") from None
    return f"{_PROFILE_PREFIX[plid.profile]}{plid.level:02x}"


def parse_sdp_profile_level_id(params: Mapping[str, object]) -> ProfileLevelId | None:
    """The profile-level-id of codec parameters: the default when absent, None if invalid."""
    value = params.get("profile-level-id")
    if normalize(value) is None:
        return DEFAULT_PROFILE_LEVEL_ID
    return parse_profile_level_id(value)


def is_same_profile(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    """Whether two sets of codec parameters name the same profile (levels ignored)."""
    pa = parse_sdp_profile_level_id(a)
    pb = parse_sdp_profile_level_id(b)
    return pa is not None and pb is not None and pa.profile == pb.profile


def _is_less_level(a: int, b: int) -> bool:
    # Level 1b sits between 1 and 1.1. (libwebrtc's rule; the JavaScript port has
    # `a !== L1` in the second test, which makes 1.1 "less" than 1b.)
    if a == LEVEL_1B:
        return b not in (10, LEVEL_1B)
    if b == LEVEL_1B:
        return a == 10
    return a < b


def _level_asymmetry_allowed(params: Mapping[str, object]) -> bool:
    return params.get("level-asymmetry-allowed") in (True, 1, "1")


def answer_profile_level_id(
    local: Mapping[str, object], remote: Mapping[str, object]
) -> str | None:
    """The profile-level-id to answer with, or None if neither side sets one.

    Raises ValueError when either is invalid or the profiles differ (the cases where
    mediasoup's `generateProfileLevelIdStringForAnswer` throws). Without level asymmetry
    on both sides the answer takes the lower level.
    """
    if normalize(local.get("profile-level-id")) is None and (
        normalize(remote.get("profile-level-id")) is None
    ):
        return None
    lp = parse_sdp_profile_level_id(local)
    rp = parse_sdp_profile_level_id(remote)
    if lp is None:
        raise ValueError("invalid local profile-level-id")
    if rp is None:
        raise ValueError("invalid remote profile-level-id")
    if lp.profile != rp.profile:
        raise ValueError("H.264 profile mismatch")
    if _level_asymmetry_allowed(local) and _level_asymmetry_allowed(remote):
        level = lp.level
    else:
        level = lp.level if _is_less_level(lp.level, rp.level) else rp.level
    return profile_level_id_to_string(ProfileLevelId(lp.profile, level))


def describe(value: object) -> str:
    """A readable name for a profile-level-id, e.g. "ConstrainedBaseline 3.1 (42e01f)"."""
    plid = parse_profile_level_id(value)
    text = normalize(value)
    if plid is None:
        return f"unknown ({text})"
    level = "1b" if plid.level == LEVEL_1B else f"{plid.level // 10}.{plid.level % 10}"
    name = "".join(part.capitalize() for part in plid.profile.name.split("_"))
    return f"{name} {level} ({text})"
