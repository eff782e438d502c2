"""Python client of VAS for scripts and notebooks: REST calls with token refresh, and a
WebRTC consumer (the guide's flow or WHEP) that yields decoded frames (and, over WHEP,
audio) as numpy arrays."""

from vas_client.consumer import AudioFrame, Frame, StreamConsumer, SyncStreamConsumer
from vas_client.http import VasClient, VasError

__all__ = ["AudioFrame", "Frame", "StreamConsumer", "SyncStreamConsumer", "VasClient", "VasError"]
