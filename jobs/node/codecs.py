"""What a stream ingests and what it serves: the device's `transcode` setting against the
camera's codec (docs/codecs.md).

- H.264 from the camera: WebRTC gets it as it is (``auto``, ``never``), or re-encoded by
  the stream's transcoder (``always``: to scale down or cap the bitrate). With ``auto``, a
  camera whose profile is not constrained baseline also has a "baseline" plan: consumers
  whose capabilities refuse the camera's profile get the transcoder's constrained baseline
  (on demand, only while such a consumer watches); the others get the camera's H.264.
- H.265: recorded as it is; WebRTC gets H.264 from the transcoder (``auto``, ``always``), or
  nothing (``never``: consumers are refused with the reason).
- MJPEG: no HLS player takes it, so the transcoder runs for the whole stream and its H.264
  is what is recorded and served (``never`` refuses WebRTC, recording still transcodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from media.rtsp_source import StreamInfo
from media.transcode import TranscodeSettings, output_size, profile_level_id
from media.webrtc.h264_profile import Profile, parse_profile_level_id

# FFmpeg's codec names and the names the API shows (RTP encoding names).
CODEC_NAMES = {"h264": "H264", "hevc": "H265", "mjpeg": "JPEG"}
FFMPEG_NAMES = {name: codec for codec, name in CODEC_NAMES.items()}
DEFAULT_KBPS = 2500


@dataclass(frozen=True, slots=True)
class TranscodePolicy:
    """The device's `transcode` settings."""

    mode: str = "auto"  # auto | always | never
    settings: TranscodeSettings = field(default_factory=TranscodeSettings)

    @classmethod
    def of(cls, device_settings: dict[str, Any] | None) -> TranscodePolicy:
        values = device_settings or {}
        return cls(
            mode=str(values.get("transcode") or "auto"),
            settings=TranscodeSettings(
                width=values.get("transcode_width"), height=values.get("transcode_height"),
                kbps=int(values.get("transcode_kbps") or DEFAULT_KBPS),
            ),
        )


@dataclass(frozen=True, slots=True)
class VideoPlan:
    """How one stream's video goes: recorded as ingested or transcoded, served how."""

    codec: str  # FFmpeg's name of what the camera sends
    transcode: bool  # WebRTC (and, for MJPEG, recording) takes the transcoder's H.264
    always_on: bool  # the transcoder runs for the whole stream (MJPEG recording)
    refusal: str | None  # why WebRTC consumers are refused (transcode: never)
    served_profile: str | None  # profile-level-id of the H.264 WebRTC gets
    served_size: tuple[int, int]
    #: profile-level-id of the transcoder's H.264 for consumers that refuse the camera's
    #: profile (H.264 camera, ``auto``, not constrained baseline), else None.
    baseline_profile: str | None = None
    baseline_size: tuple[int, int] = (0, 0)


def plan_video(codec: str, width: int, height: int, source_profile: str | None,
               policy: TranscodePolicy) -> VideoPlan:
    """The plan for a camera sending ``codec`` under ``policy``."""
    needs = codec != "h264"
    always_on = codec == "mjpeg"
    if policy.mode == "never" and needs:
        name = CODEC_NAMES.get(codec, codec)
        return VideoPlan(codec, always_on, always_on,
                         f"the camera sends {name} and its transcode setting is 'never': "
                         "WebRTC takes H.264 only", None, (width, height))
    if needs or policy.mode == "always":
        size = output_size(policy.settings, width, height)
        return VideoPlan(codec, True, always_on, None, profile_level_id(*size), size)
    parsed = parse_profile_level_id(source_profile)
    if policy.mode == "auto" and parsed is not None \
            and parsed.profile is not Profile.CONSTRAINED_BASELINE:
        size = output_size(policy.settings, width, height)
        return VideoPlan(codec, False, False, None, source_profile, (width, height),
                         profile_level_id(*size), size)
    return VideoPlan(codec, False, False, None, source_profile, (width, height))


def codec_config(info: StreamInfo, plan: VideoPlan, policy: TranscodePolicy) -> dict[str, Any]:
    """`codec_config` of the stream detail: what is ingested (`video`) and what WebRTC
    consumers are served (`webrtc`)."""
    served: dict[str, Any] | None = None
    if plan.refusal is None:
        served = {
            "codec": "H264",
            "profile": plan.served_profile,
            "payloadType": 96,
            "width": plan.served_size[0],
            "height": plan.served_size[1],
            "transcoded": plan.transcode,
        }
        if plan.transcode:
            served["kbps"] = policy.settings.kbps
        if plan.baseline_profile is not None:
            # What a consumer refusing the camera's profile is served instead.
            served["baseline"] = {
                "codec": "H264", "profile": plan.baseline_profile, "payloadType": 96,
                "width": plan.baseline_size[0], "height": plan.baseline_size[1],
                "transcoded": True, "kbps": policy.settings.kbps}
    return {
        "video": {
            "codec": CODEC_NAMES.get(info.codec, info.codec.upper()),
            "profile": info.profile_level_id,
            "payloadType": 96,
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
        },
        "webrtc": served,
        "transcode": policy.mode,
        "recording": {"codec": "H264" if plan.always_on else CODEC_NAMES.get(info.codec),
                      "container": "MPEG-TS"},
        **({"webrtc_refusal": plan.refusal} if plan.refusal else {}),
    }
