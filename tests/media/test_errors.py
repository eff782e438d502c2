"""classify_open_error and redact_url; the real PyAV exceptions are exercised in
test_ingest_rtsp.py, these pin the mapping for the ones a loopback test cannot provoke."""

from __future__ import annotations

import errno
import socket

import av.error
import pytest

from media.errors import (
    SourceError,
    SourceTimeout,
    SourceUnauthorized,
    SourceUnreachable,
    classify_open_error,
    redact_url,
)

URL = "rtsp://admin:s3cret@cam.example:554/live"


@pytest.mark.parametrize(
    ("exc", "elapsed", "expected"),
    [
        (
            av.error.ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused", URL),
            0,
            SourceUnreachable,
        ),
        (av.error.OSError(errno.EHOSTUNREACH, "No route to host", URL), 0, SourceUnreachable),
        (av.error.OSError(errno.ENETUNREACH, "Network is unreachable", URL), 0, SourceUnreachable),
        (av.error.TimeoutError(errno.ETIMEDOUT, "Connection timed out", URL), 5, SourceTimeout),
        (av.error.InvalidDataError(-1, "Invalid data found", URL), 5.0, SourceTimeout),
        (av.error.ExitError(-1, "Immediate exit requested", URL), 4.95, SourceTimeout),
        (av.error.InvalidDataError(-1, "Invalid data found", URL), 0.01, SourceError),
        (av.error.HTTPUnauthorizedError(-1, "401 Unauthorized", URL), 0, SourceUnauthorized),
        (av.error.HTTPForbiddenError(-1, "403 Forbidden", URL), 0, SourceUnauthorized),
        (av.error.HTTPNotFoundError(-1, "404 Not Found", URL), 0, SourceError),
    ],
)
def test_classification(exc: Exception, elapsed: float, expected: type[SourceError]) -> None:
    error = classify_open_error(exc, URL, elapsed=elapsed, timeout=5.0)
    assert type(error) is expected
    assert "s3cret" not in str(error) and "admin" not in str(error)
    assert "cam.example:554" in str(error)


def test_unresolvable_host_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    # FFmpeg reports a failed DNS lookup as a bare EIO; the name is checked again.
    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    eio = av.error.OSError(errno.EIO, "Input/output error", URL)
    assert type(classify_open_error(eio, URL, 0.01, 5.0)) is SourceUnreachable


def test_eio_from_a_resolvable_host_stays_generic() -> None:
    url = "rtsp://localhost:554/x"  # /etc/hosts: no DNS traffic
    eio = av.error.OSError(errno.EIO, "Input/output error", url)
    assert type(classify_open_error(eio, url, 0.01, 5.0)) is SourceError


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (URL, "rtsp://***@cam.example:554/live"),
        ("rtsp://user@10.0.0.2/s", "rtsp://***@10.0.0.2/s"),
        ("rtsp://u:p@[::1]:8554/s?x=1", "rtsp://***@[::1]:8554/s?x=1"),
        ("rtsp://127.0.0.1:8554/cam", "rtsp://127.0.0.1:8554/cam"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
