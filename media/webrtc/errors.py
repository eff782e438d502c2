"""Errors raised by the WebRTC package; the media node maps them to its callers' terms."""

from __future__ import annotations


class WebRtcError(Exception):
    """Base of every error this package raises on purpose."""


class CapabilityMismatch(WebRtcError):
    """The client cannot receive the stream's codec; the message says why."""


class PortRangeExhausted(WebRtcError):
    """No UDP port of the configured range could be bound."""


class InvalidRemoteParameters(WebRtcError):
    """DTLS parameters, ICE candidates or SDP sent by the client are unusable."""


class TransportStateError(WebRtcError):
    """The operation does not fit the transport's current state (e.g. connect twice)."""


class KindUnavailable(WebRtcError):
    """The stream has no media of the kind asked for (audio from a camera without sound)."""
