"""The guide's audio, the mediasoup way, at the API (docs/codecs.md): router-capabilities
list Opus only for a stream whose camera sends audio; `consume` takes `kind` (`video`
default, `audio`), refusing an unknown kind and audio on a stream without it with 400 in
the guide's shape before any media node is asked; the OpenAPI document says so."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from core.stream_states import StreamState
from core.streams import StreamRecord, StreamService
from tests.conftest import bearer

H264 = {"codec": "H264", "profile": "42e01f", "payloadType": 96, "width": 640, "height": 360,
        "fps": 15.0}
AUDIO = {"codec": "AAC", "sample_rate": 16000, "channels": 1,
         "recording": {"codec": "AAC", "transcoded": False},
         "webrtc": {"codec": "OPUS", "clock_rate": 48000, "channels": 2, "transcoded": True}}


async def _live(client: httpx.AsyncClient, audio: bool) -> StreamRecord:
    """A LIVE stream row whose codec is known (no media node runs in these tests)."""
    device = await client.post("/api/v1/devices", json={
        "name": f"cam-{uuid.uuid4().hex[:6]}", "rtsp_url": "rtsp://192.0.2.1/s"})
    service = StreamService()
    row, _ = await service.create(uuid.UUID(device.json()["id"]))
    config: dict[str, Any] = {"video": H264}
    if audio:
        config["audio"] = AUDIO
    await service.set_codec(row.id, config)
    for step in (StreamState.READY, StreamState.LIVE):
        row = await service.transition(row.id, step)
    return row


async def _caps(client: httpx.AsyncClient, token: str, stream_id: uuid.UUID) -> dict[str, Any]:
    answer = await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                              headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["rtp_capabilities"])


async def test_router_capabilities_list_opus_only_with_audio(client, admin_token):
    silent = await _caps(client, admin_token, (await _live(client, audio=False)).id)
    sound = await _caps(client, admin_token, (await _live(client, audio=True)).id)
    assert [c["mimeType"] for c in silent["codecs"]] == ["video/H264"]
    assert {e["kind"] for e in silent["headerExtensions"]} == {"video"}
    assert sound["codecs"][0] == silent["codecs"][0]  # the video's codec is unchanged
    assert sound["codecs"][1] == {
        "kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 101,
        "clockRate": 48000, "channels": 2, "parameters": {},
        "rtcpFeedback": [{"type": "nack"}, {"type": "transport-cc"}]}
    assert {e["kind"] for e in sound["headerExtensions"]} == {"video", "audio"}


async def test_consume_refuses_unknown_kinds_and_audio_without_audio(client, admin_token):
    silent = await _live(client, audio=False)
    caps = await _caps(client, admin_token, silent.id)
    headers = bearer(admin_token)

    async def consume(stream_id: uuid.UUID, kind: Any) -> httpx.Response:
        return await client.post(f"/v2/streams/{stream_id}/consume", headers=headers,
                                 json={"client_id": "c", "rtp_capabilities": caps, "kind": kind})

    no_audio = await consume(silent.id, "audio")
    assert (no_audio.status_code, no_audio.json()) == (400, {
        "detail": "This stream has no audio: its camera sends none (codec_config has no 'audio')"})
    for kind in ("data", "AUDIO", "", 1, None):
        refused = await consume(silent.id, kind)
        assert refused.status_code == 400, (kind, refused.text)
        assert set(refused.json()) == {"detail"}
        assert "kind" in refused.json()["detail"], refused.json()
    # A known kind on a stream with audio gets past validation to its (absent) node: 503.
    sound = await _live(client, audio=True)
    unserved = await consume(sound.id, "audio")
    assert unserved.status_code == 503, unserved.text


async def test_openapi_documents_the_kind_of_a_consumer(client: httpx.AsyncClient):
    spec = (await client.get("/schema/openapi.json")).json()
    operation = spec["paths"]["/v2/streams/{stream_id}/consume"]["post"]
    assert {"400", "409", "429", "503"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    kind = body["properties"]["kind"]
    if "$ref" in kind:
        kind = spec["components"]["schemas"][kind["$ref"].rsplit("/", 1)[1]]
    assert set(kind["enum"]) == {"video", "audio"} and kind.get("default", "video") == "video"
    assert "kind" not in body.get("required", [])
