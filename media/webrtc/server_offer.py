"""A server-offer WebRTC session (the OmniSight document's `GET /cameras/:id/live/webrtc`):
the server offers a sendonly H.264 video section, the viewer's plain `RTCPeerConnection`
answers. The reverse of WHEP, on the same plain aiortc peer connection, the same fan-out
(GOP-cache start) and the same announced candidates.

aiortc only knows its own encoder's H.264 profiles (42001f, 42e01f). The offer names the
camera's profile instead (so that a browser answers for what it will really receive); the
answer is mapped back to aiortc's payload types to be applied, and the negotiated codec then
carries the camera's parameters again, as `WhepSession` does.

When the stream has audio (a `TrackSource` of kind "audio"), the offer has a sendonly
audio section first, bundled with the video, and its sections are named as in the
OmniSight document (`a=group:BUNDLE audio video`); a video-only offer is unchanged. An
answer that rejects the audio (port 0, `inactive`, no Opus) still gets the video: its audio
section is made an inactive one on the video's transport and the audio track is released.

When the stream has a baseline fan-out (the transcoder's constrained baseline, for viewers
refusing the camera's profile), the video section lists two H.264 formats: the camera's
profile, then aiortc's own constrained baseline (42e01f). An answer taking the camera's is
served as above; one taking only the baseline format gets its track from the baseline
fan-out instead (swapped before anything is sent), and `on_baseline` says so.
"""

from __future__ import annotations

import re
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.sdp import GroupDescription, MediaDescription, SessionDescription

from media.webrtc.capabilities import router_rtp_capabilities
from media.webrtc.errors import (
    CapabilityMismatch,
    InvalidRemoteParameters,
    TransportStateError,
)
from media.webrtc.fanout import Fanout
from media.webrtc.gathering import gather_announced
from media.webrtc.lean_sender import LeanSender
from media.webrtc.whep import WhepSession, without_mdns

_PROFILE = re.compile(r"^(a=fmtp:(\d+) .*?profile-level-id=)([0-9a-fA-F]{6})", re.MULTILINE)
# The sections' names (mids) when there is audio, as in the OmniSight document's example.
_AUDIO_MIDS = {"a=mid:0": "a=mid:audio", "a=mid:1": "a=mid:video",
               "a=group:BUNDLE 0 1": "a=group:BUNDLE audio video"}


class ServerOfferSession(WhepSession):
    """One viewer: `offer()` once, then `accept(answer_sdp)`, then `close()` (inherited, as
    are `state` and the close on ICE failure)."""

    _aiortc_profiles: dict[str, str]  # offered payload type -> aiortc's profile-level-id

    def __init__(self, *, baseline: Fanout | None = None, baseline_profile: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._baseline = baseline
        self._baseline_profile = (baseline_profile or "").lower()
        self._baseline_pt: str | None = None  # the offered baseline format's payload type
        #: Whether the answer took only the baseline format (sent from that fan-out).
        self.on_baseline = False

    @property
    def answered(self) -> bool:
        """Whether the viewer's answer was applied."""
        return self._pc.signalingState == "stable" and self._track is not None

    async def offer(self) -> str:
        """The SDP offer (sendonly Opus audio when the stream has audio, sendonly H.264,
        candidates included)."""
        if self._track is not None:
            raise TransportStateError("the session already has an offer")
        audio = next((source.subscribe() for source in self._sources
                      if source.kind == "audio"), None)
        if audio is not None:  # first, as the document's `a=group:BUNDLE audio video`
            self._extra_tracks.append(audio)
            self._pc.addTransceiver(audio, direction="sendonly").setCodecPreferences([
                c for c in RTCRtpSender.getCapabilities("audio").codecs
                if c.mimeType.lower() == "audio/opus"])
        self._track = self._fanout.subscribe()
        transceiver = self._pc.addTransceiver(self._track, direction="sendonly")
        # The lean send path instead of aiortc's per-viewer packetizing sender.
        LeanSender.install(transceiver, self._track)
        transceiver.setCodecPreferences([
            c for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() == "video/h264"
        ])
        offer = await self._pc.createOffer()
        for ice in {t.sender.transport.transport for t in self._pc.getTransceivers()}:
            if not ice._connection._local_candidates_start:
                await gather_announced(ice._connection, self._settings)
        if audio is not None:
            offer = RTCSessionDescription(re.sub("|".join(_AUDIO_MIDS), lambda m: _AUDIO_MIDS[
                m[0]], offer.sdp), "offer")
        await self._pc.setLocalDescription(offer)
        self._aiortc_profiles = {m[1]: m[2] for m in _PROFILE.findall(
            self._pc.localDescription.sdp)}
        if self._baseline is not None:  # aiortc's own format of that profile stays as it is
            self._baseline_pt = next((pt for pt, aiortc in self._aiortc_profiles.items()
                                      if aiortc.lower() == self._baseline_profile), None)
        profile = self._camera_codec()["parameters"]["profile-level-id"]
        return _PROFILE.sub(lambda m: m[0] if m[2] == self._baseline_pt else f"{m[1]}{profile}",
                            str(self._pc.localDescription.sdp))

    async def accept(self, answer_sdp: str) -> None:
        """Apply the viewer's answer; media flows once ICE and DTLS connect."""
        if self._track is None or self._pc.signalingState != "have-local-offer":
            raise TransportStateError("no offer is waiting for an answer")
        try:
            parsed = SessionDescription.parse(answer_sdp)
        except Exception as exc:  # aiortc raises assorted errors on bad SDP
            raise InvalidRemoteParameters(f"unparsable SDP answer: {exc}") from None
        video = [m for m in parsed.media if m.kind == "video"]
        if len(video) != 1 or video[0].direction not in ("recvonly", "sendrecv"):
            raise InvalidRemoteParameters("the answer needs exactly one receiving video section")
        chosen = [c for c in video[0].rtp.codecs if c.mimeType.lower() == "video/h264"
                  and str(c.payloadType) in self._aiortc_profiles]
        if not chosen:
            raise CapabilityMismatch("the answer accepts none of the offered H.264 formats")
        audio = [m for m in parsed.media if m.kind == "audio"]
        if audio and self._extra_tracks and _rejected(audio[0]):
            answer_sdp = self._without_audio(parsed, audio[0], video[0])
        # Back to aiortc's own profile ids, so that aiortc's codec matching accepts it.
        mapped = _PROFILE.sub(lambda m: f"{m[1]}{self._aiortc_profiles.get(m[2], m[3])}",
                              answer_sdp)
        try:
            # mDNS host candidates are dropped as in WHEP (`without_mdns`): resolving them held
            # the answer for a second each.
            await self._pc.setRemoteDescription(
                RTCSessionDescription(without_mdns(mapped), "answer"))
        except (ValueError, AssertionError) as exc:
            raise InvalidRemoteParameters(f"unusable SDP answer: {exc}") from None
        except Exception as exc:
            raise CapabilityMismatch(f"no H.264 in common: {exc}") from None
        # The camera's format whenever the answer takes it, else the baseline one.
        first = next((c for c in chosen if str(c.payloadType) != self._baseline_pt), None)
        if first is None and self._baseline is not None:
            first = chosen[0]
            self.on_baseline = True
            self._track.stop()
            try:
                self._track = self._baseline.subscribe()
            except RuntimeError:  # the stream stopped since the offer: its fan-out is shut
                raise TransportStateError("the stream stopped before the answer") from None
        camera = self._camera_codec()
        supported = {(fb["type"], fb.get("parameter")) for fb in camera["rtcpFeedback"]}
        assert first is not None
        for transceiver in self._pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            if self.on_baseline:  # not started yet: it sends from the baseline fan-out
                LeanSender.install(transceiver, self._track)
            # Forward the camera's H.264 as it is, under the payload type the viewer took.
            transceiver._codecs = [RTCRtpCodecParameters(
                mimeType="video/H264", clockRate=90000, payloadType=first.payloadType,
                rtcpFeedback=[RTCRtcpFeedback(type=fb.type, parameter=fb.parameter)
                              for fb in first.rtcpFeedback
                              if (fb.type, fb.parameter) in supported],
                parameters=dict(camera["parameters"]))]

    def _camera_codec(self) -> dict[str, Any]:
        """The codec sent: the camera's, or the baseline fan-out's once the answer took it."""
        profile = self._baseline_profile if self.on_baseline else self._profile_level_id
        codec: dict[str, Any] = router_rtp_capabilities(profile)["codecs"][0]
        return codec

    def _without_audio(self, answer: SessionDescription, audio: MediaDescription,
                       video: MediaDescription) -> str:
        """The answer with its rejected audio section made one aiortc applies and never
        sends on (inactive, on the video's transport); the audio track released."""
        local = SessionDescription.parse(self._pc.localDescription.sdp)
        offered = next(m for m in local.media if m.kind == "audio")
        audio.direction = "inactive"
        audio.port = video.port
        audio.ice, audio.dtls, audio.rtcp_mux = video.ice, video.dtls, True
        # The same transport as the video's (whichever of the two BUNDLE names first).
        audio.ice_candidates = video.ice_candidates
        audio.ice_candidates_complete = video.ice_candidates_complete
        audio.rtp.codecs = offered.rtp.codecs
        audio.fmt = [c.payloadType for c in offered.rtp.codecs]
        bundle = next((g for g in answer.group if g.semantic == "BUNDLE"), None)
        if bundle is None:
            bundle = GroupDescription(semantic="BUNDLE", items=[video.rtp.muxId])
            answer.group.append(bundle)
        if audio.rtp.muxId not in bundle.items:
            bundle.items.append(audio.rtp.muxId)
        for track in self._extra_tracks:
            track.stop()
        self._extra_tracks.clear()
        return str(answer)


def _rejected(audio: MediaDescription) -> bool:
    """Whether the viewer's answer declines the offered audio."""
    return (audio.port == 0 or audio.direction not in ("recvonly", "sendrecv")
            or not any(c.mimeType.lower() == "audio/opus" for c in audio.rtp.codecs))
