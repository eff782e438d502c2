"""The node protocol's one translation: every error that may cross comes back as the same
class with the same fields, through JSON; an unknown name is never guessed."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from core.errors import CROSSING, MediaInternalError, StreamError
from jobs.node.protocol import (
    Consume,
    Consumed,
    Refused,
    ViewerRequest,
    decode,
    decode_reply,
    encode,
    error_to_reply,
    reply_to_error,
)


@pytest.mark.parametrize("name", sorted(CROSSING))
def test_every_crossing_error_comes_back_the_same(name: str) -> None:
    cls = CROSSING[name]
    error = cls("the message", "the detail") if issubclass(cls, StreamError) else cls("the message")
    wire = json.loads(json.dumps(encode(error_to_reply(error))))
    assert wire == {"type": "Refused", "error": name, "message": "the message",
                    "detail": "the detail" if issubclass(cls, StreamError) else None}
    with pytest.raises(cls) as back:
        decode_reply(wire, Consumed)
    assert type(back.value) is cls and back.value.message == "the message"
    if isinstance(back.value, StreamError):
        assert back.value.detail == "the detail"


def test_an_unknown_error_name_is_a_media_failure() -> None:
    error = reply_to_error(Refused(error="SystemExit", message="boom"))
    assert isinstance(error, MediaInternalError) and error.detail == "SystemExit"


def test_requests_and_replies_round_trip_through_json() -> None:
    request = Consume(stream_id=uuid.uuid4(), consumer_id=uuid.uuid4(), client_id="ruth",
                      rtp_capabilities={"codecs": [{"mimeType": "video/H264"}]})
    wire = json.loads(json.dumps(encode(request)))
    assert wire["type"] == "Consume"
    assert decode(wire, ViewerRequest) == request
    reply = Consumed(consumer_id=request.consumer_id, transport={"id": "t"}, rtp_parameters={})
    assert decode_reply(json.loads(json.dumps(encode(reply))), Consumed) == reply
    with pytest.raises(msgspec.ValidationError):
        decode({"type": "Consume", "stream_id": "not a uuid"}, ViewerRequest)
