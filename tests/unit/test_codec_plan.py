"""The codec plan of a stream (jobs/node/codecs.py, docs/codecs.md): what the camera's codec
and the device's `transcode` setting make of recording and WebRTC."""

from __future__ import annotations

import pytest

from jobs.node.codecs import TranscodePolicy, plan_video
from media.transcode import TranscodeSettings, output_size, profile_level_id


@pytest.mark.parametrize("codec, mode, transcode, always_on, refused", [
    ("h264", "auto", False, False, False),
    ("h264", "never", False, False, False),
    ("h264", "always", True, False, False),
    ("hevc", "auto", True, False, False),
    ("hevc", "always", True, False, False),
    ("hevc", "never", False, False, True),
    ("mjpeg", "auto", True, True, False),
    ("mjpeg", "never", True, True, True),  # recording still needs the H.264
])
def test_plan_follows_codec_and_setting(codec, mode, transcode, always_on, refused):
    plan = plan_video(codec, 1920, 1080, "640028", TranscodePolicy.of({"transcode": mode}))
    assert (plan.transcode, plan.always_on, plan.refusal is not None) == (
        transcode, always_on, refused)
    if refused:
        assert plan.served_profile is None and "never" in (plan.refusal or "")
    elif transcode:
        assert plan.served_profile == "42e028"  # constrained baseline, level 4 for 1080p
    else:
        assert plan.served_profile == "640028"  # the camera's own


def test_policy_and_output_size():
    policy = TranscodePolicy.of({"transcode": "always", "transcode_width": 1280,
                                 "transcode_kbps": 1500})
    assert policy.mode == "always" and policy.settings.kbps == 1500
    assert TranscodePolicy.of(None).mode == "auto"
    assert output_size(policy.settings, 1920, 1080) == (1280, 720)
    assert output_size(TranscodeSettings(height=180), 640, 360) == (320, 180)
    assert output_size(TranscodeSettings(), 641, 361) == (640, 360)
    assert profile_level_id(1280, 720) == "42e01f"


@pytest.mark.parametrize("profile, mode, baseline", [
    ("640028", "auto", "42e028"),  # High: consumers refusing it get the transcoder's
    ("4d0029", "auto", "42e028"),  # Main, likewise
    ("42e01f", "auto", None),  # already constrained baseline: nothing better to offer
    ("640028", "never", None),  # never: refused, no CPU spent
    ("640028", "always", None),  # everyone gets the transcoder's already
    (None, "auto", None),  # profile unknown
])
def test_baseline_plan_for_consumers_refusing_the_cameras_profile(profile, mode, baseline):
    plan = plan_video("h264", 1920, 1080, profile, TranscodePolicy.of({"transcode": mode}))
    assert plan.baseline_profile == baseline
    if baseline is not None:
        assert (plan.transcode, plan.served_profile) == (False, profile)
        assert plan.baseline_size == (1920, 1080)
