"""Errors raised when an RTSP source cannot be opened or read, and their classification.

PyAV raises ``av.error.FFmpegError`` subclasses whose meaning depends on the protocol;
``classify_open_error`` is the one place that turns them into this small tree, so the
caller (start-stream) can answer 502 or 504 without knowing FFmpeg. What FFmpeg 8 /
PyAV 18 actually raise, measured against real servers on 127.0.0.1:

- port closed: ``av.error.ConnectionRefusedError`` (errno ECONNREFUSED), immediately;
- host name that does not resolve: ``av.error.OSError`` with errno EIO (FFmpeg logs
  "Failed to resolve hostname" but returns a generic I/O error);
- server accepts TCP but never answers: ``av.error.InvalidDataError`` once the timeout
  elapses (the rtsp demuxer turns the timed-out reply read into AVERROR_INVALIDDATA),
  or ``av.error.ExitError`` when PyAV's own timeout interrupts first;
- wrong or missing credentials: ``av.error.HTTPUnauthorizedError`` (RTSP 401);
- unknown path: ``av.error.HTTPNotFoundError`` (RTSP 404);
- stream that stalls after opening: ``av.error.TimeoutError`` (ETIMEDOUT) or
  ``av.error.ExitError`` from the read.
"""

from __future__ import annotations

import errno
import logging
import socket
from urllib.parse import urlsplit, urlunsplit

import av.error

logger = logging.getLogger(__name__)


class SourceError(Exception):
    """The RTSP source could not be opened or stopped delivering media."""


class SourceUnreachable(SourceError):
    """Nothing answers at the source's address: refused, unreachable host, or unknown name."""


class SourceTimeout(SourceError):
    """The source accepted the connection or was being reached but did not answer in time."""


class SourceUnauthorized(SourceError):
    """The source rejected the credentials (RTSP 401/403)."""


class SourceRefused(SourceError):
    """The address may not be opened as a camera; refused before any connection."""


class NoVideoStream(SourceError):
    """The source opened but offers no H.264 video stream."""


_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET}
)


def redact_url(url: str) -> str:
    """The URL with any ``user:password@`` replaced by ``***@``, safe for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def host_resolves(url: str) -> bool:
    """Whether the URL's host name resolves (blocking; call from a worker thread)."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def classify_open_error(
    exc: BaseException, url: str, elapsed: float, timeout: float
) -> SourceError:
    """Map an exception from ``av.open`` on an RTSP URL to a :class:`SourceError`.

    ``elapsed`` and ``timeout`` (seconds) matter because FFmpeg reports a timed-out
    RTSP handshake as invalid data or an interrupted call, not as ETIMEDOUT. Host name
    resolution is re-checked here, since a DNS failure surfaces only as EIO.
    """
    where = redact_url(url)
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceUnauthorized(f"{where}: credentials rejected ({reason})")
    if code in _UNREACHABLE_ERRNOS:
        return SourceUnreachable(f"{where}: {reason}")
    if code == errno.ETIMEDOUT or isinstance(exc, TimeoutError):
        return SourceTimeout(f"{where}: no answer within {timeout:g} s")
    timed_out = elapsed >= timeout * 0.9
    if isinstance(exc, av.error.ExitError | av.error.InvalidDataError) and timed_out:
        return SourceTimeout(f"{where}: no answer within {timeout:g} s")
    if isinstance(exc, av.error.OSError) and code == errno.EIO and not host_resolves(url):
        return SourceUnreachable(f"{where}: host name does not resolve")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return SourceError(f"{where}: stream not found ({reason})")
    return SourceError(f"{where}: {reason}")
