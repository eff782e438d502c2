"""The one error tree of VAS. Domain code raises these; each API family maps them to HTTP once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class VasError(Exception):
    """Base of every error VAS raises on purpose.

    `details` is optional structured context (e.g. the field at fault, or the kind and id of
    a missing resource) for API families that show it; the VAS family shows only `message`.
    """

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class ConfigError(VasError):
    """The environment does not describe a runnable configuration."""


class InvalidInput(VasError):
    """The request is well-formed but its values are not acceptable."""


class Unauthorized(VasError):
    """No credentials, or credentials that are invalid, expired or revoked."""


class Forbidden(VasError):
    """Valid credentials without the scope the operation needs."""


class NotFound(VasError):
    """The addressed resource does not exist."""


class Conflict(VasError):
    """The resource exists but its state does not allow the operation."""


class RateLimited(VasError):
    """Too many attempts; `retry_after` seconds until the next one is accepted."""

    def __init__(
        self, message: str, retry_after: int, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class StreamError(VasError):
    """A stream operation failed; carries the guide's `error_code` and a technical detail."""

    error_code = "STREAM_START_FAILED"

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class RtspConnectionFailed(StreamError):
    """The camera refused the connection or its URL is unusable."""

    error_code = "RTSP_CONNECTION_FAILED"


class RtspTimeout(StreamError):
    """The camera did not answer within the timeout."""

    error_code = "RTSP_TIMEOUT"


class SsrcCaptureFailed(StreamError):
    """The camera answered but carries no usable video."""

    error_code = "SSRC_CAPTURE_FAILED"


class MediaUnavailable(StreamError):
    """No media node answered in time."""

    error_code = "MEDIASOUP_UNAVAILABLE"


class MediaInternalError(StreamError):
    """A media node failed while handling a request."""

    error_code = "MEDIASOUP_ERROR"


class StreamStartFailed(StreamError):
    """Starting the stream failed for a reason not covered above."""

    error_code = "STREAM_START_FAILED"


class StreamStopFailed(StreamError):
    """Stopping the stream failed."""

    error_code = "STREAM_STOP_FAILED"


class FfmpegError(StreamError):
    """FFmpeg failed to decode, encode or remux media (the guide's transcoding failure)."""

    error_code = "FFMPEG_ERROR"


STREAM_ERRORS: dict[str, type[StreamError]] = {
    cls.error_code: cls
    for cls in (RtspConnectionFailed, RtspTimeout, SsrcCaptureFailed, MediaUnavailable,
                MediaInternalError, FfmpegError, StreamStartFailed, StreamStopFailed)
}


def stream_error(error_code: str, message: str, detail: str | None = None) -> StreamError:
    """Rebuild a stream error from its guide code (e.g. the `error_code` column of a stream)."""
    return STREAM_ERRORS.get(error_code, StreamStartFailed)(message, detail)


# The errors that may cross between processes (a media node's refusal, named by class).
_CROSSING: tuple[type[VasError], ...] = (
    InvalidInput, NotFound, Conflict, Forbidden, StreamError, *STREAM_ERRORS.values())
CROSSING: dict[str, type[VasError]] = {cls.__name__: cls for cls in _CROSSING}


def crossing_error(name: str, message: str, detail: str | None = None) -> VasError:
    """The error named `name` (a key of `CROSSING`) with its fields; unknown names are a
    media node failure, never a guess."""
    cls = CROSSING.get(name)
    if cls is None:
        return MediaInternalError("A media node answered with an unknown error", name)
    if issubclass(cls, StreamError):
        return cls(message, detail)
    return cls(message)
