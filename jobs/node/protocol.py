"""The typed messages between the API and the job processes (media nodes and workers).

Every control call is a request struct in and a reply struct out; both cross Dramatiq as
JSON (`encode` / `decode`). A refusal is a `Refused` reply naming a `core.errors` class and
its fields, never an HTTP status: `error_to_reply` and `reply_to_error` are the one pair that
turns an exception into a reply and back into the same exception. HTTP is `api.errors`'s
business alone.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from core.errors import (
    RtspConnectionFailed,
    RtspTimeout,
    SsrcCaptureFailed,
    StreamError,
    StreamStartFailed,
    VasError,
    crossing_error,
)
from media.errors import NoVideoStream, SourceError, SourceTimeout, SourceUnauthorized


class Message(msgspec.Struct, frozen=True, tag=True):
    """Base of every request and reply: tagged with its class name on the wire."""


# -- requests ---------------------------------------------------------------------------


class StartStream(Message, frozen=True):
    """Claim the stream, open its camera and take it LIVE (shared start queue)."""

    stream_id: uuid.UUID


class StopStream(Message, frozen=True):
    """End the stream's pipeline and close it (the owning node's queue)."""

    stream_id: uuid.UUID


class Ping(Message, frozen=True):
    """Prove that a node serves its control queue."""

    sent_at: float


class Consume(Message, frozen=True):
    """Attach a mediasoup-style consumer of the stream's video or audio (`kind`)."""

    stream_id: uuid.UUID
    consumer_id: uuid.UUID
    client_id: str
    rtp_capabilities: dict[str, Any]
    kind: str = "video"


class Connect(Message, frozen=True):
    """The client's DTLS parameters for a consumer's transport."""

    stream_id: uuid.UUID
    consumer_id: uuid.UUID
    dtls_parameters: dict[str, Any]


class AddCandidate(Message, frozen=True):
    """A trickled client ICE candidate (None: end of candidates)."""

    stream_id: uuid.UUID
    consumer_id: uuid.UUID
    candidate: dict[str, Any] | str | None


class CloseConsumer(Message, frozen=True):
    """Close a consumer or a WHEP session."""

    stream_id: uuid.UUID
    consumer_id: uuid.UUID


class WhepOffer(Message, frozen=True):
    """Start a WHEP session from the player's SDP offer."""

    stream_id: uuid.UUID
    session_id: uuid.UUID
    offer_sdp: str


class WhepPatch(Message, frozen=True):
    """Trickle ICE to a WHEP session (an SDP fragment)."""

    stream_id: uuid.UUID
    session_id: uuid.UUID
    sdpfrag: str


class OfferSession(Message, frozen=True):
    """Start a server-offer WebRTC session (OmniSight): the node makes the SDP offer."""

    stream_id: uuid.UUID
    session_id: uuid.UUID
    client_id: str


class AnswerSession(Message, frozen=True):
    """The viewer's SDP answer to a server-offer session."""

    stream_id: uuid.UUID
    session_id: uuid.UUID
    answer_sdp: str


class Handover(Message, frozen=True):
    """A stopping node released these streams: take over those you have room for, now
    (each node's control queue; not waited for)."""

    from_node: str
    stream_ids: list[uuid.UUID]


class LiveSnapshot(Message, frozen=True):
    """Make a snapshot row's JPEG from the stream's GOP cache (not waited for)."""

    snapshot_id: uuid.UUID


ViewerRequest = (Consume | Connect | AddCandidate | CloseConsumer | WhepOffer | WhepPatch
                 | OfferSession | AnswerSession)


class DetectFrame(Message, frozen=True):
    """An object-detection job, from the node that owns the stream to the `detect` queue:
    one sampled frame (JPEG, `frame_size` (w, h), downscaled from the camera's
    `source_size`), its arrival time (Unix s) and the motion boxes found in it (x, y, w, h
    in `frame_size` pixels; empty when motion detection is off)."""

    camera_id: uuid.UUID
    stream_id: uuid.UUID
    wallclock: float
    frame_size: tuple[int, int]
    source_size: tuple[int, int]
    motion: list[tuple[int, int, int, int]]
    jpeg: bytes


class Validate(Message, frozen=True):
    """Probe a camera URL without saving it (worker)."""

    url: str
    transport: str


# -- replies ----------------------------------------------------------------------------


class Refused(Message, frozen=True):
    """The request was refused: `error` names a class of `core.errors`."""

    error: str
    message: str
    detail: str | None = None


class Started(Message, frozen=True):
    """The stream is LIVE on `owner`; None when another node holds it."""

    owner: str | None


class Stopped(Message, frozen=True):
    """The stream is closed; `stopped` tells whether this node was running it."""

    stopped: bool


class Pong(Message, frozen=True):
    node_id: str | None
    sent_at: float
    answered_at: float


class Consumed(Message, frozen=True):
    """The consumer's server transport and RTP parameters, for the client."""

    consumer_id: uuid.UUID
    transport: dict[str, Any]
    rtp_parameters: dict[str, Any]


class Connected(Message, frozen=True):
    consumer_id: uuid.UUID
    transport_id: str


class Done(Message, frozen=True):
    """The operation took effect; nothing to tell."""


class WhepAnswer(Message, frozen=True):
    answer: str


class SessionOffer(Message, frozen=True):
    """A server-offer session's SDP offer."""

    offer: str


class Probed(Message, frozen=True):
    """The camera answered: what its video is."""

    ssrc: int
    codec: str
    width: int
    height: int
    fps: float | None
    profile: str | None
    open_seconds: float


class ProbeFailed(Message, frozen=True):
    """The camera could not be opened: the guide's code and why."""

    error_code: str
    error: str
    detail: str | None


# -- the one translation --------------------------------------------------------------


def error_to_reply(exc: VasError) -> Refused:
    """A refusal that `reply_to_error` turns back into the same error."""
    detail = exc.detail if isinstance(exc, StreamError) else None
    return Refused(error=type(exc).__name__, message=exc.message, detail=detail)


def reply_to_error(reply: Refused) -> VasError:
    """The error a refusal names (from the explicit registry of `core.errors`)."""
    return crossing_error(reply.error, reply.message, reply.detail)


def source_failure(exc: SourceError) -> StreamError:
    """The guide's error for a camera that could not be opened."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, SourceTimeout):
        return RtspTimeout("Camera did not answer in time", detail)
    if isinstance(exc, NoVideoStream):
        return SsrcCaptureFailed("Failed to capture video from RTSP source", detail)
    if isinstance(exc, SourceUnauthorized):
        return RtspConnectionFailed("Camera refused the credentials", detail)
    if isinstance(exc, SourceError):
        return RtspConnectionFailed("Failed to connect to RTSP source", detail)
    return StreamStartFailed("Stream start failed", detail)


def source_lost(exc: SourceError) -> StreamError:
    """The guide's error for a LIVE camera that dropped, or failed to come back: a stall is
    RTSP_TIMEOUT, a connection that ended is RTSP_CONNECTION_FAILED, a failed reconnect
    keeps the reason of its kind (`source_failure`)."""
    if type(exc) is SourceError:  # a plain drop: the camera closed or reset the connection
        return RtspConnectionFailed("Camera connection lost", str(exc) or "source dropped")
    return source_failure(exc)


def encode(message: Message) -> Any:
    """JSON-ready builtins for a Dramatiq argument or result."""
    return msgspec.to_builtins(message)


def decode(obj: Any, kind: Any) -> Any:
    """A struct of type `kind` (or of a union of structs, by tag) from what crossed Dramatiq."""
    return msgspec.convert(obj, kind)


def decode_reply(obj: Any, kind: Any) -> Any:
    """The reply `kind` (a struct or a union of them); a refusal is raised as the error it
    names."""
    reply = msgspec.convert(obj, kind | Refused)
    if isinstance(reply, Refused):
        raise reply_to_error(reply)
    return reply
