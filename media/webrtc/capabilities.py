"""Router RTP capabilities and per-consumer RTP parameters in mediasoup's shapes.

The guide's `router-capabilities` answer goes to mediasoup-client's `Device.load()`, and
the `consume` answer's `rtp_parameters` to `transport.consume()`. mediasoup-client
validates both: codecs need a numeric `preferredPayloadType`, header extensions need
`kind` and a numeric `preferredId`, and the consumer's payload type must be the router's.
The router offers the stream's own H.264 (forwarded, never re-encoded) and, for a stream
whose camera sends audio, Opus (the stream's one Opus transcoder), with only the header
extensions the senders write.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from media.webrtc import h264_profile
from media.webrtc.errors import CapabilityMismatch

logger = logging.getLogger(__name__)

H264_MIME_TYPE = "video/H264"
CLOCK_RATE = 90000
# mediasoup hands out dynamic payload types from 100 on; 127 is mediasoup-client's probator.
ROUTER_PAYLOAD_TYPE = 100
# Opus takes the next one: H.264 keeps 100 whether or not the stream has audio.
OPUS_PAYLOAD_TYPE = 101
OPUS_MIME_TYPE = "audio/opus"
OPUS_CLOCK_RATE = 48000
OPUS_CHANNELS = 2
DEFAULT_PROFILE_LEVEL_ID = "42e01f"

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
# The ids mediasoup uses for these extensions.
HEADER_EXTENSION_IDS = {MID_URI: 1, ABS_SEND_TIME_URI: 4}

# PLI and FIR are advertised like mediasoup does; the camera is not asked for a keyframe,
# the sender answers from the GOP cache instead (media.webrtc.lean_sender).
RTCP_FEEDBACK: tuple[dict[str, str], ...] = (
    {"type": "nack"},
    {"type": "nack", "parameter": "pli"},
    {"type": "ccm", "parameter": "fir"},
    {"type": "goog-remb"},
)

# mediasoup's own feedback for Opus (the consumer keeps what the client supports, and
# transport-cc only with its header extension, which no sender here writes).
OPUS_RTCP_FEEDBACK: tuple[dict[str, str], ...] = ({"type": "nack"}, {"type": "transport-cc"})

# mediasoup-client's probator uses SSRC 1234; mediasoup picks from this range.
SSRC_MIN = 100_000_000
SSRC_MAX = 999_999_999


def router_rtp_capabilities(profile_level_id: str | None = None, *,
                            audio: bool = False) -> dict[str, Any]:
    """The router capabilities for a stream whose SPS says `profile_level_id`, with Opus
    when the stream has `audio`.

    Keeps the guide's shape (`{"codecs": [...], "headerExtensions": [...]}`) with the
    fields mediasoup-client requires; the H.264 codec comes first. Raises ValueError for
    an unknown profile-level-id.
    """
    plid = h264_profile.normalize(profile_level_id) or DEFAULT_PROFILE_LEVEL_ID
    if h264_profile.parse_profile_level_id(plid) is None:
        raise ValueError(f"unknown H.264 profile-level-id {profile_level_id!r}")
    kinds = ("video", "audio") if audio else ("video",)
    codecs: list[dict[str, Any]] = [
            {
                "kind": "video",
                "mimeType": H264_MIME_TYPE,
                "preferredPayloadType": ROUTER_PAYLOAD_TYPE,
                "clockRate": CLOCK_RATE,
                "parameters": {
                    "packetization-mode": 1,
                    "profile-level-id": plid,
                    "level-asymmetry-allowed": 1,
                },
                "rtcpFeedback": [dict(fb) for fb in RTCP_FEEDBACK],
            }
        ]
    if audio:
        codecs.append({
            "kind": "audio",
            "mimeType": OPUS_MIME_TYPE,
            "preferredPayloadType": OPUS_PAYLOAD_TYPE,
            "clockRate": OPUS_CLOCK_RATE,
            "channels": OPUS_CHANNELS,
            "parameters": {},
            "rtcpFeedback": [dict(fb) for fb in OPUS_RTCP_FEEDBACK],
        })
    return {
        "codecs": codecs,
        "headerExtensions": [
            {
                "kind": kind,
                "uri": uri,
                "preferredId": ext_id,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            }
            for kind in kinds
            for uri, ext_id in HEADER_EXTENSION_IDS.items()
        ],
    }


def random_ssrc() -> int:
    """An SSRC the way mediasoup draws them (never mediasoup-client's probator 1234)."""
    return random.randint(SSRC_MIN, SSRC_MAX)


def _packetization_mode(params: Mapping[str, object]) -> int:
    value = params.get("packetization-mode") or 0
    try:
        return int(str(value))
    except ValueError:
        return -1


def _h264_mismatch(client: Mapping[str, Any], router: Mapping[str, Any]) -> str | None:
    """Why `client` cannot receive `router`'s H.264 (mediasoup's strict match), or None."""
    cp: Mapping[str, object] = client.get("parameters") or {}
    rp: Mapping[str, object] = router["parameters"]
    if _packetization_mode(cp) != _packetization_mode(rp):
        return (
            f"packetization-mode differs (client {cp.get('packetization-mode', 0)}, "
            f"stream {rp.get('packetization-mode', 0)})"
        )
    if not h264_profile.is_same_profile(cp, rp):
        return (
            f"H.264 profile not compatible: stream is "
            f"{h264_profile.describe(rp.get('profile-level-id'))}, client offers "
            f"{h264_profile.describe(cp.get('profile-level-id') or DEFAULT_PROFILE_LEVEL_ID)}"
        )
    try:
        h264_profile.answer_profile_level_id(cp, rp)
    except ValueError as exc:
        return f"H.264 profile-level-id not usable: {exc}"
    return None


def match_h264(
    client_codecs: Sequence[Mapping[str, Any]], router_codec: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The first client codec that can receive `router_codec`, else CapabilityMismatch."""
    h264 = [
        c
        for c in client_codecs
        if isinstance(c, Mapping)
        and str(c.get("mimeType", "")).lower() == H264_MIME_TYPE.lower()
        and c.get("clockRate") == CLOCK_RATE
    ]
    if not h264:
        raise CapabilityMismatch("the client's rtp_capabilities have no H.264 codec at 90000 Hz")
    reasons = []
    for codec in h264:
        reason = _h264_mismatch(codec, router_codec)
        if reason is None:
            return codec
        reasons.append(reason)
    # Every candidate failed: report the distinct reasons, most specific first.
    raise CapabilityMismatch("; ".join(dict.fromkeys(reasons)))


def match_opus(client_codecs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The client's Opus codec (48000 Hz, 2 channels, as WebRTC names it), else
    CapabilityMismatch."""
    for codec in client_codecs:
        if (isinstance(codec, Mapping)
                and str(codec.get("mimeType", "")).lower() == OPUS_MIME_TYPE
                and codec.get("clockRate") == OPUS_CLOCK_RATE
                and codec.get("channels", OPUS_CHANNELS) == OPUS_CHANNELS):
            return codec
    raise CapabilityMismatch("the client's rtp_capabilities have no Opus codec at 48000 Hz")


def _feedback_key(fb: Mapping[str, Any]) -> tuple[str, str]:
    return (str(fb.get("type", "")), str(fb.get("parameter") or ""))


def consumer_rtp_parameters(
    client_caps: Mapping[str, Any],
    router_caps: Mapping[str, Any],
    *,
    ssrc: int,
    mid: str,
    cname: str,
    kind: str = "video",
) -> dict[str, Any]:
    """The `rtp_parameters` of a consumer of `kind`, as mediasoup's `getConsumerRtpParameters`.

    The codec keeps the router's payload type and parameters (the stream's own
    profile-level-id, or Opus for audio), the RTCP feedback both sides support, the
    header extensions of that kind both know, and one encoding with `ssrc`.
    Raises CapabilityMismatch when the client cannot receive it (or the router has no
    codec of that kind).
    """
    if not isinstance(client_caps, Mapping):
        raise CapabilityMismatch("rtp_capabilities must be an object")
    client_codecs = client_caps.get("codecs") or []
    client_exts = client_caps.get("headerExtensions") or []
    if not isinstance(client_codecs, list) or not isinstance(client_exts, list):
        raise CapabilityMismatch("rtp_capabilities codecs and headerExtensions must be arrays")
    if ssrc == 1234 or not 0 < ssrc < 2**32:
        raise ValueError(f"unusable SSRC {ssrc}")

    router_codec = next((c for c in router_caps["codecs"] if c["kind"] == kind), None)
    if router_codec is None:
        raise CapabilityMismatch(f"the stream has no {kind}")
    client_codec = (match_h264(client_codecs, router_codec) if kind == "video"
                    else match_opus(client_codecs))

    router_fb = {_feedback_key(fb) for fb in router_codec.get("rtcpFeedback", [])}
    feedback = [
        {"type": t, "parameter": p}
        for t, p in (_feedback_key(fb) for fb in client_codec.get("rtcpFeedback") or [])
        if (t, p) in router_fb
    ]

    extensions = [
        {"uri": ext["uri"], "id": ext["preferredId"], "encrypt": False, "parameters": {}}
        for ext in router_caps.get("headerExtensions", [])
        if ext.get("kind", kind) == kind and any(
            isinstance(c, Mapping)
            and c.get("uri") == ext["uri"]
            and c.get("preferredId") == ext["preferredId"]
            for c in client_exts
        )
    ]
    # Congestion control feedback: transport-cc if its extension is used, else REMB
    # (which needs abs-send-time), else neither. mediasoup reduces the same way.
    uris = {e["uri"] for e in extensions}
    if TRANSPORT_CC_URI in uris:
        feedback = [fb for fb in feedback if fb["type"] != "goog-remb"]
    elif ABS_SEND_TIME_URI in uris:
        feedback = [fb for fb in feedback if fb["type"] != "transport-cc"]
    else:
        feedback = [fb for fb in feedback if fb["type"] not in ("transport-cc", "goog-remb")]

    codec: dict[str, Any] = {
        "mimeType": router_codec["mimeType"],
        "payloadType": router_codec["preferredPayloadType"],
        "clockRate": router_codec["clockRate"],
        "parameters": dict(router_codec["parameters"]),
        "rtcpFeedback": feedback,
    }
    if "channels" in router_codec:
        codec["channels"] = router_codec["channels"]
    return {
        "mid": mid,
        "codecs": [codec],
        "headerExtensions": extensions,
        "encodings": [{"ssrc": ssrc}],
        "rtcp": {"cname": cname, "reducedSize": True},
    }
