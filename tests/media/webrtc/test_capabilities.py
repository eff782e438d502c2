"""Router capabilities and consumer RTP parameters, in the shapes mediasoup-client checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from media.webrtc import h264_profile
from media.webrtc.capabilities import (
    ABS_SEND_TIME_URI,
    MID_URI,
    ROUTER_PAYLOAD_TYPE,
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)
from media.webrtc.errors import CapabilityMismatch
from media.webrtc.h264_profile import Profile, ProfileLevelId
from tests.media.webrtc.ortc_client import chrome_like_caps

# What Chromium offers for H.264 (see notes/webrtc.md).
CHROMIUM_PROFILES = ("42001f", "42e01f", "4d001f", "f4001f")


def client_caps(*profile_level_ids: str, packetization_mode: int = 1) -> dict[str, Any]:
    router = router_rtp_capabilities()
    caps = chrome_like_caps(router)
    template = caps["codecs"][0]
    caps["codecs"] = [
        {
            **template,
            "parameters": {
                **template["parameters"],
                "profile-level-id": plid,
                "packetization-mode": packetization_mode,
            },
        }
        for plid in profile_level_ids
    ]
    return caps


def consume(client: dict[str, Any], stream_plid: str = "42e01f") -> dict[str, Any]:
    return consumer_rtp_parameters(
        client, router_rtp_capabilities(stream_plid), ssrc=123456789, mid="0", cname="cam-1"
    )


# --- router-capabilities -------------------------------------------------------------


def test_router_capabilities_keep_the_guide_shape_with_mediasoup_client_fields() -> None:
    caps = router_rtp_capabilities("4d0032")
    assert set(caps) == {"codecs", "headerExtensions"}
    [codec] = caps["codecs"]
    # mediasoup-client's validateRtpCodecCapability: mimeType, numeric clockRate and
    # preferredPayloadType.
    assert codec["mimeType"] == "video/H264" and codec["kind"] == "video"
    assert type(codec["preferredPayloadType"]) is int
    assert codec["preferredPayloadType"] == ROUTER_PAYLOAD_TYPE != 127
    assert type(codec["clockRate"]) is int and codec["clockRate"] == 90000
    # packetization-mode is a number, as sdp-transform parses the browser's fmtp.
    assert codec["parameters"]["packetization-mode"] == 1
    assert type(codec["parameters"]["packetization-mode"]) is int
    assert codec["parameters"]["profile-level-id"] == "4d0032"
    feedback = {(fb["type"], fb.get("parameter")) for fb in codec["rtcpFeedback"]}
    assert {("nack", None), ("nack", "pli"), ("goog-remb", None), ("ccm", "fir")} <= feedback
    # validateRtpHeaderExtension: kind, uri and a numeric preferredId.
    uris = set()
    for ext in caps["headerExtensions"]:
        assert ext["kind"] == "video"
        assert isinstance(ext["uri"], str)
        assert type(ext["preferredId"]) is int and 1 <= ext["preferredId"] <= 14
        uris.add(ext["uri"])
    assert {MID_URI, ABS_SEND_TIME_URI} <= uris
    assert json.loads(json.dumps(caps)) == caps


def test_router_capabilities_default_and_invalid_profiles() -> None:
    caps = router_rtp_capabilities(None)
    assert caps["codecs"][0]["parameters"]["profile-level-id"] == "42e01f"
    with pytest.raises(ValueError, match="profile-level-id"):
        router_rtp_capabilities("zzzzzz")


# --- consume --------------------------------------------------------------------------


def test_consumer_parameters_for_a_chromium_device() -> None:
    router = router_rtp_capabilities("42e01f")
    params = consumer_rtp_parameters(
        chrome_like_caps(router), router, ssrc=987654321, mid="3", cname="cam-1"
    )
    [codec] = params["codecs"]
    assert codec["payloadType"] == router["codecs"][0]["preferredPayloadType"]
    assert codec["mimeType"] == "video/H264" and codec["clockRate"] == 90000
    assert codec["parameters"] == router["codecs"][0]["parameters"]
    # Feedback both support; REMB kept (abs-send-time is used), transport-cc dropped.
    assert {(fb["type"], fb["parameter"]) for fb in codec["rtcpFeedback"]} == {
        ("nack", ""),
        ("nack", "pli"),
        ("ccm", "fir"),
        ("goog-remb", ""),
    }
    assert {(e["uri"], e["id"]) for e in params["headerExtensions"]} == {
        (MID_URI, 1),
        (ABS_SEND_TIME_URI, 4),
    }
    assert all(e["encrypt"] is False and e["parameters"] == {} for e in params["headerExtensions"])
    assert params["encodings"] == [{"ssrc": 987654321}]
    assert params["rtcp"] == {"cname": "cam-1", "reducedSize": True}
    assert params["mid"] == "3"


def test_consumer_parameters_for_the_guides_abbreviated_capabilities() -> None:
    # The guide's example: no preferredPayloadType, no rtcpFeedback, no extensions.
    guide = {
        "codecs": [
            {
                "mimeType": "video/H264",
                "kind": "video",
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": "42e01f"},
            }
        ],
        "headerExtensions": [],
    }
    params = consume(guide)
    assert params["codecs"][0]["payloadType"] == ROUTER_PAYLOAD_TYPE
    assert params["codecs"][0]["rtcpFeedback"] == []
    assert params["headerExtensions"] == []


def test_extensions_need_the_same_id_as_the_router() -> None:
    caps = chrome_like_caps(router_rtp_capabilities())
    for ext in caps["headerExtensions"]:
        if ext["uri"] == ABS_SEND_TIME_URI:
            ext["preferredId"] = 9
    params = consume(caps)
    assert [e["uri"] for e in params["headerExtensions"]] == [MID_URI]
    # Without abs-send-time there is no REMB either.
    assert "goog-remb" not in {fb["type"] for fb in params["codecs"][0]["rtcpFeedback"]}


def test_the_matching_profile_among_chromiums_codecs_is_chosen() -> None:
    params = consume(client_caps(*CHROMIUM_PROFILES), stream_plid="4d0032")
    # The consumer describes the stream (Main 5.0), whatever level the client offered.
    assert params["codecs"][0]["parameters"]["profile-level-id"] == "4d0032"


def test_mismatch_without_h264() -> None:
    vp8_only = {
        "codecs": [{"mimeType": "video/VP8", "kind": "video", "clockRate": 90000}],
        "headerExtensions": [],
    }
    with pytest.raises(CapabilityMismatch, match=r"no H\.264"):
        consume(vp8_only)
    with pytest.raises(CapabilityMismatch, match=r"no H\.264"):
        consume({})


def test_mismatch_on_packetization_mode() -> None:
    with pytest.raises(CapabilityMismatch, match="packetization-mode differs"):
        consume(client_caps("42e01f", packetization_mode=0))


def test_mismatch_on_profile_names_both_sides() -> None:
    with pytest.raises(CapabilityMismatch) as info:
        consume(client_caps("42e01f", "42001f"), stream_plid="640028")
    message = str(info.value)
    assert "High 4.0 (640028)" in message
    assert "ConstrainedBaseline 3.1 (42e01f)" in message
    assert "Baseline 3.1 (42001f)" in message


def test_baseline_and_constrained_baseline_are_different_profiles() -> None:
    # mediasoup treats them as different profiles too; Chromium offers both.
    consume(client_caps("42001f"), stream_plid="42001f")
    with pytest.raises(CapabilityMismatch):
        consume(client_caps("42001f"), stream_plid="42e01f")


def test_numeric_profile_level_id_from_sdp_transform() -> None:
    # sdp-transform turns 640028 into a number; it must still match.
    caps = client_caps("42e01f")
    caps["codecs"][0]["parameters"]["profile-level-id"] = 640028
    consume(caps, stream_plid="640028")


def test_invalid_ssrc_is_refused() -> None:
    with pytest.raises(ValueError):
        consumer_rtp_parameters(
            client_caps("42e01f"), router_rtp_capabilities(), ssrc=1234, mid="0", cname="x"
        )
    for _ in range(100):
        assert 100_000_000 <= random_ssrc() <= 999_999_999


# --- H.264 profile-level-id, as mediasoup's h264-profile-level-id ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42e01f", ProfileLevelId(Profile.CONSTRAINED_BASELINE, 31)),
        ("42001f", ProfileLevelId(Profile.BASELINE, 31)),
        ("42c02a", ProfileLevelId(Profile.CONSTRAINED_BASELINE, 42)),
        ("4de01f", ProfileLevelId(Profile.CONSTRAINED_BASELINE, 31)),
        ("4d001f", ProfileLevelId(Profile.MAIN, 31)),
        ("4d0032", ProfileLevelId(Profile.MAIN, 50)),
        ("58a01f", ProfileLevelId(Profile.BASELINE, 31)),
        ("640c1f", ProfileLevelId(Profile.CONSTRAINED_HIGH, 31)),
        ("64001f", ProfileLevelId(Profile.HIGH, 31)),
        ("f4001f", ProfileLevelId(Profile.PREDICTIVE_HIGH_444, 31)),
        ("42f00b", ProfileLevelId(Profile.CONSTRAINED_BASELINE, h264_profile.LEVEL_1B)),
        ("42e00b", ProfileLevelId(Profile.CONSTRAINED_BASELINE, 11)),
        ("42E01F", ProfileLevelId(Profile.CONSTRAINED_BASELINE, 31)),
    ],
)
def test_parse_profile_level_id(text: str, expected: ProfileLevelId) -> None:
    assert h264_profile.parse_profile_level_id(text) == expected


@pytest.mark.parametrize("text", ["", "42e01", "42e01f0", "000000", "42e0ff", "650c1f", "xyz123"])
def test_parse_rejects(text: str) -> None:
    assert h264_profile.parse_profile_level_id(text) is None


@pytest.mark.parametrize(
    "plid", ["42e01f", "42001f", "4d001f", "640c1f", "64001f", "f4001f", "42f00b", "42100b"]
)
def test_to_string_round_trips(plid: str) -> None:
    parsed = h264_profile.parse_profile_level_id(plid)
    assert parsed is not None
    assert h264_profile.profile_level_id_to_string(parsed) == plid


def test_answer_level_handling() -> None:
    answer = h264_profile.answer_profile_level_id
    high = {"profile-level-id": "42e01f", "level-asymmetry-allowed": 1}
    low = {"profile-level-id": "42e00a", "level-asymmetry-allowed": "1"}
    # With level asymmetry on both sides the local level stands...
    assert answer(high, low) == "42e01f"
    # ...without it the lower level wins, level 1b counting as between 1 and 1.1.
    assert answer({"profile-level-id": "42e01f"}, low) == "42e00a"
    assert answer({"profile-level-id": "42e00b"}, {"profile-level-id": "42f00b"}) == "42f00b"
    assert answer({"profile-level-id": "42e00a"}, {"profile-level-id": "42f00b"}) == "42e00a"
    # Absent on both sides: nothing to answer. Absent on one: the default profile.
    assert answer({}, {}) is None
    assert answer({}, {"profile-level-id": "42e01f"}) == "42e01f"
    with pytest.raises(ValueError, match="mismatch"):
        answer({"profile-level-id": "4d001f"}, {"profile-level-id": "42e01f"})
    with pytest.raises(ValueError, match="invalid"):
        answer({"profile-level-id": "zz"}, {"profile-level-id": "42e01f"})


# --- audio (docs/codecs.md: the guide's flow takes the camera's sound as Opus) ------------


def test_router_capabilities_list_opus_only_for_a_stream_with_audio() -> None:
    video_only = router_rtp_capabilities("42e01f")
    with_audio = router_rtp_capabilities("42e01f", audio=True)
    assert [c["kind"] for c in video_only["codecs"]] == ["video"]
    assert {e["kind"] for e in video_only["headerExtensions"]} == {"video"}
    # The video's codec and extensions are the same with audio: only Opus is added.
    assert with_audio["codecs"][0] == video_only["codecs"][0]
    assert [e for e in with_audio["headerExtensions"] if e["kind"] == "video"] \
        == video_only["headerExtensions"]
    opus = with_audio["codecs"][1]
    assert opus == {
        "kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 101,
        "clockRate": 48000, "channels": 2, "parameters": {},
        "rtcpFeedback": [{"type": "nack"}, {"type": "transport-cc"}]}
    assert opus["preferredPayloadType"] != ROUTER_PAYLOAD_TYPE
    assert {(e["uri"], e["preferredId"]) for e in with_audio["headerExtensions"]
            if e["kind"] == "audio"} == {(MID_URI, 1), (ABS_SEND_TIME_URI, 4)}
    json.dumps(with_audio)


def test_audio_consumer_parameters_in_mediasoup_shape() -> None:
    router = router_rtp_capabilities("42e01f", audio=True)
    params = consumer_rtp_parameters(chrome_like_caps(router), router, ssrc=223456789,
                                     mid="0", cname="cam-1", kind="audio")
    assert params == {
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 101, "clockRate": 48000,
                    "channels": 2, "parameters": {},
                    # transport-cc needs its header extension, which is not sent.
                    "rtcpFeedback": [{"type": "nack", "parameter": ""}]}],
        "headerExtensions": [
            {"uri": MID_URI, "id": 1, "encrypt": False, "parameters": {}},
            {"uri": ABS_SEND_TIME_URI, "id": 4, "encrypt": False, "parameters": {}}],
        "encodings": [{"ssrc": 223456789}],
        "rtcp": {"cname": "cam-1", "reducedSize": True},
    }


def test_video_consumer_parameters_do_not_change_with_audio() -> None:
    caps = chrome_like_caps(router_rtp_capabilities("42e01f", audio=True))
    with_audio = consumer_rtp_parameters(caps, router_rtp_capabilities("42e01f", audio=True),
                                         ssrc=123456789, mid="0", cname="cam-1")
    assert with_audio == consume(client_caps("42e01f"))


def test_audio_consumer_refused_without_opus_or_without_audio() -> None:
    router = router_rtp_capabilities("42e01f", audio=True)
    with pytest.raises(CapabilityMismatch, match="no Opus codec"):
        consumer_rtp_parameters(client_caps("42e01f"), router, ssrc=223456789, mid="0",
                                cname="x", kind="audio")
    with pytest.raises(CapabilityMismatch, match="no audio"):
        consumer_rtp_parameters(chrome_like_caps(router), router_rtp_capabilities("42e01f"),
                                ssrc=223456789, mid="0", cname="x", kind="audio")
