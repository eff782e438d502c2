"""Glue between mediasoup-shaped parameters and aiortc's ORTC objects.

aiortc's ORTC classes have no hooks for what a mediasoup-style transport needs: an
`RTCIceGatherer` on a connection of our choosing, parameters converted from the dicts
mediasoup-client speaks. The small adapters live here so that `consumer_transport` reads
as the transport's lifecycle only (its sender is `media.webrtc.lean_sender`).
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Mapping
from typing import Any

from aioice import Candidate
from aiortc import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCIceGatherer,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
)
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)

from media.webrtc.errors import InvalidRemoteParameters
from media.webrtc.ice_lite import IceLiteConnection

logger = logging.getLogger(__name__)

_certificate: RTCCertificate | None = None


def shared_certificate() -> RTCCertificate:
    """The node's DTLS certificate, like mediasoup's one per worker; renewed near expiry."""
    global _certificate
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    if _certificate is None or _certificate.expires < soon:
        _certificate = RTCCertificate.generateCertificate()
    return _certificate


class LiteIceGatherer(RTCIceGatherer):
    """An `RTCIceGatherer` whose connection is the ICE-lite one (aiortc has no hook)."""

    def __init__(self, connection: IceLiteConnection) -> None:
        super().__init__(iceServers=[])
        self._connection = connection


# What mediasoup accepts (its FingerprintAlgorithm), with the digest sizes.
_DIGEST_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$")


def remote_dtls_parameters(params: Mapping[str, Any]) -> tuple[RTCDtlsParameters, str]:
    """The client's DTLS parameters, and the role this side must take.

    Raises InvalidRemoteParameters for anything mediasoup would refuse.
    """
    if not isinstance(params, Mapping):
        raise InvalidRemoteParameters("dtls_parameters must be an object")
    fingerprints = params.get("fingerprints")
    if not isinstance(fingerprints, list) or not fingerprints:
        raise InvalidRemoteParameters("dtls_parameters.fingerprints must be a non-empty array")
    parsed = []
    for fp in fingerprints:
        if not (
            isinstance(fp, Mapping)
            and isinstance(fp.get("algorithm"), str)
            and isinstance(fp.get("value"), str)
        ):
            raise InvalidRemoteParameters("each fingerprint needs an algorithm and a value")
        algorithm = fp["algorithm"].lower()
        size = _DIGEST_BYTES.get(algorithm)
        if size is None:
            raise InvalidRemoteParameters(
                f"fingerprint algorithm {fp['algorithm']!r} is not one of "
                + ", ".join(_DIGEST_BYTES)
            )
        if not _FINGERPRINT.match(fp["value"]) or len(fp["value"]) != 3 * size - 1:
            raise InvalidRemoteParameters(
                f"a {algorithm} fingerprint is {size} hex bytes separated by colons"
            )
        parsed.append(RTCDtlsFingerprint(algorithm=algorithm, value=fp["value"]))
    role = params.get("role") or "auto"
    if role not in ("auto", "client", "server"):
        raise InvalidRemoteParameters(f"unknown DTLS role {role!r}")
    # Like mediasoup: the server is the DTLS server unless the client insists on it.
    local_role = "client" if role == "server" else "server"
    return RTCDtlsParameters(fingerprints=parsed, role=role), local_role


def send_parameters(rtp: Mapping[str, Any], ssrc: int) -> RTCRtpSendParameters:
    """aiortc send parameters for a consumer's `rtp_parameters` (see capabilities)."""
    codec = rtp["codecs"][0]
    return RTCRtpSendParameters(
        codecs=[
            RTCRtpCodecParameters(
                mimeType=codec["mimeType"],
                clockRate=codec["clockRate"],
                channels=codec.get("channels"),
                payloadType=codec["payloadType"],
                rtcpFeedback=[
                    RTCRtcpFeedback(type=fb["type"], parameter=fb.get("parameter") or None)
                    for fb in codec.get("rtcpFeedback", [])
                ],
                parameters=dict(codec.get("parameters", {})),
            )
        ],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=ext["id"], uri=ext["uri"])
            for ext in rtp.get("headerExtensions", [])
        ],
        muxId=rtp.get("mid") or "",
        rtcp=RTCRtcpParameters(cname=rtp["rtcp"]["cname"], mux=True, ssrc=ssrc),
        encodings=[RTCRtpEncodingParameters(ssrc=ssrc, payloadType=codec["payloadType"])],
    )


def parse_candidate(candidate: Mapping[str, Any] | str | None) -> Candidate | None:
    """A trickled candidate (`{"candidate": "candidate:..."}` or the line itself).

    None for end-of-candidates (None or an empty candidate); InvalidRemoteParameters
    for anything unparsable.
    """
    if candidate is None:
        return None
    line = candidate.get("candidate") if isinstance(candidate, Mapping) else candidate
    if not isinstance(line, str):
        raise InvalidRemoteParameters("candidate must be a string")
    line = line.strip().removeprefix("a=").removeprefix("candidate:")
    if not line:
        return None
    try:
        return Candidate.from_sdp(line)
    except (ValueError, IndexError) as exc:
        raise InvalidRemoteParameters(f"unparsable ICE candidate: {exc}") from None
