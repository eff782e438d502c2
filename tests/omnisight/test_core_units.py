"""Unit tests of the OmniSight core modules: passwords, system settings validation, notify
messages, token masking, the hub's delivery rules."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from api.omnisight.hub import SEND_QUEUE_SIZE, Connection, allowed_types
from core import notify
from core.credentials import mask_text
from core.errors import InvalidInput, Unauthorized
from core.passwords import check_policy, hash_password, verify_password
from core.system_settings import DEFAULTS, parse
from core.tokens import Principal, decode_access_token, issue_access_token
from core.users import ROLE_SCOPES, Role


@pytest.mark.real_password_hashes
def test_argon2id_hashes_verify_and_are_salted():
    stored = hash_password("correct horse 42")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password("correct horse 42", stored)
    assert not verify_password("correct horse 43", stored)
    assert not verify_password("x", "not a hash")
    assert hash_password("correct horse 42") != stored


@pytest.mark.parametrize("password", ["short", "a" * 129, "password123", "aaaabbbb", "        ",
                                      "tab\there1", "Alice-The-User", "alice123@example.com",
                                      "ALICE123"])
def test_password_policy_refusals(password):
    with pytest.raises(InvalidInput) as refused:
        check_policy(password, username="alice-the-user", email="alice123@example.com")
    assert refused.value.details == {"field": "password"}
    assert password not in refused.value.message


def test_password_policy_accepts_passphrases():
    for password in ("securepassword", "correct horse battery staple", "Zx9!Zx9!"):
        check_policy(password, username="bob", email="bob@example.com")


def test_user_tokens_carry_kind_and_session():
    token = issue_access_token("k" * 32, str(uuid.uuid4()), list(ROLE_SCOPES[Role.USER]), 60,
                               kind="user", session_id="abc")
    principal = decode_access_token("k" * 32, token)
    assert principal.is_user and principal.session_id == "abc" and principal.expires_at
    client = decode_access_token("k" * 32, issue_access_token("k" * 32, "user:x", ["admin"], 60))
    assert not client.is_user and client.client_id == "user:x"
    with pytest.raises(Unauthorized):
        decode_access_token("k" * 32, issue_access_token("k" * 32, "x", [], 60, kind="robot"))


def test_settings_defaults_parse_into_the_typed_record():
    settings = parse(json.loads(json.dumps(DEFAULTS)), "/data/recordings/hot")
    assert settings.storage.max_usage == 90 and settings.storage.retention_days == 7
    assert settings.detection.min_confidence == 0.6
    assert settings.recording.default_format == "mp4"
    assert settings.as_document()["storage"]["recordingsPath"] == "/data/recordings/hot"
    # as_document is a copy: changing it changes nothing stored in the record
    settings.as_document()["storage"]["maxUsage"] = 1
    assert settings.document["storage"]["maxUsage"] == 90


def test_token_query_values_are_masked_in_text():
    line = '127.0.0.1:5 - "WebSocket /api/v1/ws?token=eyJ.abc.def&x=1" [accepted]'
    assert mask_text(line) == '127.0.0.1:5 - "WebSocket /api/v1/ws?token=******&x=1" [accepted]'
    assert "s3cret" not in mask_text("GET /x?a=1&access_token=s3cret HTTP/1.1")
    assert "s3cret" not in mask_text("rtsp://u:s3cret@h/x ?refresh_token=s3cret")
    assert mask_text("tokens=5 token_count=3") == "tokens=5 token_count=3"


def test_notify_messages_have_the_documents_keys_and_are_checked():
    at = datetime(2023, 1, 1, tzinfo=UTC)
    assert notify.camera_status("c", "online", at) == {"type": "camera_status", "data": {
        "cameraId": "c", "status": "online", "timestamp": "2023-01-01T00:00:00.000Z"}}
    note = notify.system_notification("warning", "Storage usage above 80%", "n1", at)
    assert note["data"] == {"id": "n1", "level": "warning", "message": "Storage usage above 80%",
                            "timestamp": "2023-01-01T00:00:00.000Z"}
    assert json.loads(notify.encode(note)) == note
    for bad in ({"type": "gossip", "data": {}}, {"type": "event"},
                notify.system_notification("info", "x" * 70_000)):
        with pytest.raises(InvalidInput):
            notify.encode(bad)
    with pytest.raises(InvalidInput):
        notify.system_notification("loud", "x")


def _principal(scopes: set[str]) -> Principal:
    return Principal("u", frozenset(scopes), "j", kind="user")


async def test_hub_delivery_rules_and_the_bounded_queue():
    user = Connection(_principal(set(ROLE_SCOPES[Role.USER])),
                      allowed_types(_principal(set(ROLE_SCOPES[Role.USER]))))
    assert user.types == {"camera_status", "recording_status", "event", "system_notification"}
    assert allowed_types(_principal({"streams:read"})) == frozenset()
    assert allowed_types(_principal({"admin"})) == user.types
    only_events = Connection(_principal({"events:read"}), allowed_types(_principal({"events:read"})))

    user.offer("camera_status", "c1", "a")
    user.offer("event", "c1", "b")  # not subscribed
    user.cameras.add("c1")
    user.offer("event", "c1", "c")
    only_events.offer("camera_status", "c1", "d")
    assert [user.queue.get_nowait() for _ in range(user.queue.qsize())] == ["a", "c"]
    assert only_events.queue.empty()

    for i in range(SEND_QUEUE_SIZE):
        user.offer("camera_status", None, str(i))
    assert not user.closing.is_set()
    user.offer("camera_status", None, "one too many")
    assert user.closing.is_set() and user.close_code == 4429
    await asyncio.sleep(0)
