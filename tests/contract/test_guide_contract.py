"""The guide's request/response examples as a table, run against the product on its default
settings (a real media node, worker, RTSP camera, Redis and database; both backends).

Each row of `SHAPES` is one example of the guide (§3): the exact key set the guide shows,
plus the keys VAS adds on purpose (named, each documented in docs/decisions.md). A response
with a key missing, or one that is neither the guide's nor a documented addition, fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import bearer
from tests.vas_fixtures import until

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Shape:
    """The guide's keys of one body, and the keys VAS adds to it."""

    guide: frozenset[str]
    added: frozenset[str] = frozenset()

    def check(self, body: dict[str, Any], where: str) -> None:
        assert isinstance(body, dict), (where, body)
        missing = self.guide - set(body)
        unknown = set(body) - self.guide - self.added
        assert not missing and not unknown, f"{where}: missing {missing}, unknown {unknown}"


def shape(guide: str, added: str = "") -> Shape:
    return Shape(frozenset(guide.split()), frozenset(added.split()))


SHAPES = {
    "client": shape("client_id client_secret scopes created_at"),
    "token": shape("access_token token_type expires_in refresh_token scopes"),
    "device": shape("id name description rtsp_url is_active location created_at updated_at"),
    "device_status": shape("device_id name description location rtsp_url is_active created_at "
                           "updated_at streaming"),
    "streaming": shape("active room_id started_at"),
    "validate_ok": shape("valid rtsp_url ssrc message", added="video"),
    "validate_bad": shape("valid error rtsp_url", added="error_code"),
    "start": shape("status device_id room_id transport_id producers stream v2_stream_id"),
    "start_stream": shape("status started_at"),
    # VAS adds the audio producer when the camera sends audio (docs/decisions.md).
    "producers": shape("video", added="audio"),
    # The guide's reconnect example omits v2_stream_id; its own client reads it (§5.2).
    "reconnect": shape("status device_id room_id transport_id producers stream reconnect",
                       added="v2_stream_id"),
    "reconnect_stream": shape("status message started_at"),
    "stop": shape("status device_id stopped"),
    "stream_list": shape("streams pagination"),
    "stream_summary": shape("id name camera_id state endpoints created_at"),
    "endpoints": shape("webrtc hls health"),
    "pagination": shape("total limit offset"),
    "stream": shape("id name camera_id state codec_config producer consumers endpoints "
                    "created_at uptime_seconds"),
    "codec_video": shape("codec profile payloadType", added="width height fps"),
    "producer": shape("id mediasoup_id state ssrc"),
    "consumer_counts": shape("count active"),
    "health": shape("stream_id state is_healthy uptime_seconds metrics last_error checked_at",
                    added="codecs"),
    "metrics": shape("bitrate_kbps fps packet_loss jitter_ms"),
    "capabilities": shape("rtp_capabilities"),
    "rtp_capabilities": shape("codecs headerExtensions"),
    "router_codec": shape("mimeType kind clockRate parameters rtcpFeedback",
                          added="preferredPayloadType"),
    # Opus, listed when the camera sends audio (docs/codecs.md).
    "router_audio_codec": shape("mimeType kind clockRate parameters rtcpFeedback",
                                added="preferredPayloadType channels"),
    "consumer_codec": shape("mimeType payloadType clockRate parameters rtcpFeedback",
                            added="channels"),
    "consume": shape("consumer_id transport rtp_parameters"),
    "transport": shape("id ice_parameters ice_candidates dtls_parameters"),
    "ice_parameters": shape("usernameFragment password", added="iceLite"),
    "ice_candidate": shape("foundation priority ip port type protocol", added="address"),
    "dtls_parameters": shape("role fingerprints"),
    "fingerprint": shape("algorithm value"),
    "rtp_parameters": shape("codecs encodings", added="mid headerExtensions rtcp"),
    "encoding": shape("ssrc"),
    "connect": shape("status consumer_id transport_id"),
    "ice_ack": shape("status consumer_id"),
    "consumer_list": shape("stream_id total_consumers active_consumers consumers"),
    "consumer": shape("id client_id state created_at last_seen_at closed_at"),
    "snapshot": shape("id stream_id timestamp source created_by format file_size width height "
                      "image_url metadata created_at", added="status error"),
    "snapshot_list": shape("snapshots pagination"),
    "bookmark": shape("id stream_id center_timestamp start_time end_time duration_seconds source "
                      "label created_by event_type confidence tags video_url thumbnail_url "
                      "status metadata created_at", added="error updated_at"),
    "bookmark_list": shape("bookmarks pagination"),
}




async def test_the_guide_flow_answers_the_guide_shapes(client: httpx.AsyncClient, admin_token,
                                                       media_node, worker, start_camera):
    admin = bearer(admin_token)
    # §3.1
    created = await client.post("/v2/auth/clients", headers=admin, json={
        "client_id": "ruth-ai-production", "scopes": [
            "streams:read", "streams:write", "streams:consume", "snapshots:read",
            "snapshots:write", "bookmarks:read", "bookmarks:write"]})
    assert created.status_code == 201, created.text
    SHAPES["client"].check(created.json(), "POST /v2/auth/clients")
    assert ISO_Z.match(created.json()["created_at"])
    issued = await client.post("/v2/auth/token", json={
        "client_id": "ruth-ai-production", "client_secret": created.json()["client_secret"]})
    assert issued.status_code == 200
    SHAPES["token"].check(issued.json(), "POST /v2/auth/token")
    assert issued.json()["token_type"] == "Bearer" and issued.json()["expires_in"] == 3600
    bad = await client.post("/v2/auth/token", json={"client_id": "ruth-ai-production",
                                                     "client_secret": "wrong"})
    assert (bad.status_code, bad.json()) == (401, {"detail": "Invalid client credentials"})
    auth = bearer(issued.json()["access_token"])

    # §3.2
    camera = start_camera()
    device = await client.post("/api/v1/devices", json={
        "name": "Parking Lot Camera", "description": "Covers parking area B",
        "rtsp_url": camera.url, "location": "Parking Lot B"})
    assert device.status_code == 201, device.text
    SHAPES["device"].check(device.json(), "POST /api/v1/devices")
    assert device.json()["is_active"] is False and device.json()["updated_at"] is None
    device_id = device.json()["id"]
    listed = await client.get("/api/v1/devices", params={"skip": 0, "limit": 100})
    assert isinstance(listed.json(), list)
    for row in listed.json():
        SHAPES["device"].check(row, "GET /api/v1/devices[]")
    SHAPES["device"].check((await client.get(f"/api/v1/devices/{device_id}")).json(),
                           "GET /api/v1/devices/{id}")
    valid = await client.post("/api/v1/devices/validate",
                              json={"name": "Test Camera", "rtsp_url": camera.url}, timeout=60)
    SHAPES["validate_ok"].check(valid.json(), "validate (valid)")
    assert valid.json()["valid"] is True
    assert valid.json()["message"] == "Device validated successfully"
    invalid = await client.post("/api/v1/devices/validate", timeout=60, json={
        "name": "Test Camera", "rtsp_url": "rtsp://127.0.0.1:9/stream1"})
    SHAPES["validate_bad"].check(invalid.json(), "validate (invalid)")
    assert invalid.json()["valid"] is False
    assert invalid.json()["error_code"] == "RTSP_CONNECTION_FAILED"

    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    body = started.json()
    SHAPES["start"].check(body, "start-stream")
    SHAPES["start_stream"].check(body["stream"], "start-stream .stream")
    SHAPES["producers"].check(body["producers"], "start-stream .producers")
    assert set(body["producers"]) == {"video"}  # a camera without audio: the guide's keys
    assert body["status"] == "success" and body["stream"]["status"] == "started"
    assert body["device_id"] == body["room_id"] == device_id
    stream_id = body["v2_stream_id"]
    again = (await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)).json()
    SHAPES["reconnect"].check(again, "start-stream (reconnect)")
    SHAPES["reconnect_stream"].check(again["stream"], "start-stream (reconnect) .stream")
    assert again["reconnect"] is True and again["stream"]["status"] == "active"
    assert again["stream"]["message"] == "Stream already running"
    assert (again["v2_stream_id"], again["transport_id"], again["producers"]) == (
        stream_id, body["transport_id"], body["producers"])
    status = (await client.get(f"/api/v1/devices/{device_id}/status")).json()
    SHAPES["device_status"].check(status, "device status")
    SHAPES["streaming"].check(status["streaming"], "device status .streaming")
    assert status["streaming"] == {"active": True, "room_id": device_id,
                                   "started_at": body["stream"]["started_at"]}

    # §3.3
    page = (await client.get("/v2/streams", params={"state": "LIVE", "limit": 50, "offset": 0},
                             headers=auth)).json()
    SHAPES["stream_list"].check(page, "GET /v2/streams")
    SHAPES["pagination"].check(page["pagination"], "GET /v2/streams .pagination")
    for row in page["streams"]:
        SHAPES["stream_summary"].check(row, "GET /v2/streams[]")
        SHAPES["endpoints"].check(row["endpoints"], "GET /v2/streams[].endpoints")
    stream = (await client.get(f"/v2/streams/{stream_id}", headers=auth)).json()
    SHAPES["stream"].check(stream, "GET /v2/streams/{id}")
    # VAS adds what WebRTC is served, the transcode setting and what is recorded
    # (docs/codecs.md); `video` stays the guide's: what the camera sends.
    assert set(stream["codec_config"]) == {"video", "webrtc", "transcode", "recording"}
    assert stream["codec_config"]["webrtc"]["transcoded"] is False
    SHAPES["codec_video"].check(stream["codec_config"]["video"], "codec_config.video")
    assert stream["codec_config"]["video"]["codec"] == "H264"
    assert stream["codec_config"]["video"]["payloadType"] == 96
    assert re.fullmatch(r"[0-9a-f]{6}", stream["codec_config"]["video"]["profile"])
    SHAPES["producer"].check(stream["producer"], "stream .producer")
    assert stream["producer"]["mediasoup_id"] == body["producers"]["video"]
    assert stream["producer"]["state"] == "ACTIVE" and isinstance(stream["producer"]["ssrc"], int)
    SHAPES["consumer_counts"].check(stream["consumers"], "stream .consumers")
    health = (await client.get(f"/v2/streams/{stream_id}/health", headers=auth)).json()
    SHAPES["health"].check(health, "health")
    SHAPES["metrics"].check(health["metrics"], "health .metrics")
    assert ISO_Z.match(health["checked_at"])
    capabilities = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                                     headers=auth)).json()
    SHAPES["capabilities"].check(capabilities, "router-capabilities")
    rtp = capabilities["rtp_capabilities"]
    SHAPES["rtp_capabilities"].check(rtp, "router-capabilities .rtp_capabilities")
    for codec in rtp["codecs"]:
        SHAPES["router_codec"].check(codec, "router-capabilities codec")
    assert [codec["kind"] for codec in rtp["codecs"]] == ["video"]

    # §3.4
    consumed = await client.post(f"/v2/streams/{stream_id}/consume", headers=auth, json={
        "client_id": "ruth-ai-instance-1", "rtp_capabilities": rtp})
    assert consumed.status_code == 201, consumed.text
    consumer = consumed.json()
    SHAPES["consume"].check(consumer, "consume")
    transport = consumer["transport"]
    SHAPES["transport"].check(transport, "consume .transport")
    SHAPES["ice_parameters"].check(transport["ice_parameters"], "consume .ice_parameters")
    assert transport["ice_candidates"]
    for candidate in transport["ice_candidates"]:
        SHAPES["ice_candidate"].check(candidate, "consume .ice_candidates[]")
    SHAPES["dtls_parameters"].check(transport["dtls_parameters"], "consume .dtls_parameters")
    for fingerprint in transport["dtls_parameters"]["fingerprints"]:
        SHAPES["fingerprint"].check(fingerprint, "consume .fingerprints[]")
    SHAPES["rtp_parameters"].check(consumer["rtp_parameters"], "consume .rtp_parameters")
    for encoding in consumer["rtp_parameters"]["encodings"]:
        SHAPES["encoding"].check(encoding, "consume .encodings[]")
    consumer_id = consumer["consumer_id"]
    assert UUID.match(consumer_id)
    connected = await client.post(
        f"/v2/streams/{stream_id}/consumers/{consumer_id}/connect", headers=auth,
        json={"dtls_parameters": {"role": "client", "fingerprints": [
            {"algorithm": "sha-256", "value": ":".join(["AB"] * 32)}]}})
    assert connected.status_code == 200, connected.text
    SHAPES["connect"].check(connected.json(), "connect")
    assert connected.json() == {"status": "connected", "consumer_id": consumer_id,
                                "transport_id": transport["id"]}
    acked = await client.post(
        f"/v2/streams/{stream_id}/consumers/{consumer_id}/ice-candidate", headers=auth,
        json={"candidate": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                            "sdpMLineIndex": 0, "sdpMid": "0"}})
    assert acked.status_code == 200, acked.text
    assert acked.json() == {"status": "acknowledged", "consumer_id": consumer_id}
    consumers = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=auth)).json()
    SHAPES["consumer_list"].check(consumers, "consumers")
    assert consumers["stream_id"] == stream_id and consumers["total_consumers"] == 1
    for row in consumers["consumers"]:
        SHAPES["consumer"].check(row, "consumers[]")
        assert row["client_id"] == "ruth-ai-instance-1"
    detached = await client.delete(f"/v2/streams/{stream_id}/consumers/{consumer_id}",
                                   headers=auth)
    assert detached.status_code == 204 and detached.content == b""

    # §3.6
    snapshot = await client.post(f"/v2/streams/{stream_id}/snapshots", headers=auth, json={
        "source": "live", "created_by": "ruth-ai",
        "metadata": {"detection_type": "person", "confidence": 0.95}})
    assert snapshot.status_code == 201, snapshot.text
    SHAPES["snapshot"].check(snapshot.json(), "POST snapshots")
    snap = snapshot.json()
    assert (snap["source"], snap["created_by"], snap["format"]) == ("live", "ruth-ai", "jpg")
    assert snap["metadata"] == {"detection_type": "person", "confidence": 0.95}
    assert snap["image_url"] == f"/v2/snapshots/{snap['id']}/image"

    async def snapshot_ready() -> Any:
        row = (await client.get(f"/v2/snapshots/{snap['id']}", headers=auth)).json()
        return row if row["status"] == "ready" else None

    ready = await until(snapshot_ready, "snapshot ready", 30)
    SHAPES["snapshot"].check(ready, "GET snapshot")
    assert (ready["width"], ready["height"]) == (camera.profile.width, camera.profile.height)
    image = await client.get(ready["image_url"], headers=auth)
    assert image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    snapshots = (await client.get("/v2/snapshots", headers=auth, params={
        "stream_id": stream_id, "created_by": "ruth-ai", "limit": 50})).json()
    SHAPES["snapshot_list"].check(snapshots, "GET /v2/snapshots")
    SHAPES["pagination"].check(snapshots["pagination"], "GET /v2/snapshots .pagination")
    assert [row["id"] for row in snapshots["snapshots"]] == [snap["id"]]

    # §3.7
    bookmark = await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=auth, json={
        "source": "live", "label": "Person detected at entrance", "event_type": "person_detected",
        "confidence": 0.92, "before_seconds": 2, "after_seconds": 2,
        "tags": ["security", "entrance"], "created_by": "ruth-ai",
        "metadata": {"bounding_box": {"x": 100, "y": 150, "w": 200, "h": 400}}})
    assert bookmark.status_code == 201, bookmark.text
    mark = bookmark.json()
    SHAPES["bookmark"].check(mark, "POST bookmarks")
    assert mark["status"] == "processing" and mark["video_url"] is None
    assert mark["duration_seconds"] == 4.0 and mark["tags"] == ["security", "entrance"]

    async def bookmark_ready() -> Any:
        row = (await client.get(f"/v2/bookmarks/{mark['id']}", headers=auth)).json()
        assert row["status"] != "failed", row
        return row if row["status"] == "ready" else None

    done = await until(bookmark_ready, "bookmark ready", 60)
    SHAPES["bookmark"].check(done, "GET bookmark")
    video = await client.get(done["video_url"], headers=auth)
    assert video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
    thumb = await client.get(done["thumbnail_url"], headers=auth)
    assert thumb.headers["content-type"] == "image/jpeg"
    updated = await client.put(f"/v2/bookmarks/{mark['id']}", headers=auth, json={
        "label": "Updated: Confirmed delivery person", "event_type": "delivery",
        "tags": ["delivery", "verified"]})
    SHAPES["bookmark"].check(updated.json(), "PUT bookmark")
    assert updated.json()["tags"] == ["delivery", "verified"]
    bookmarks = (await client.get("/v2/bookmarks", headers=auth, params={
        "event_type": "delivery", "created_by": "ruth-ai", "limit": 50})).json()
    SHAPES["bookmark_list"].check(bookmarks, "GET /v2/bookmarks")
    assert [row["id"] for row in bookmarks["bookmarks"]] == [mark["id"]]

    # §3.5 (the recording has run for a segment by now)
    async def playlist() -> Any:
        response = await client.get(f"/v2/streams/{stream_id}/hls/playlist.m3u8", headers=auth)
        return response if "#EXTINF" in response.text else None

    listing = await until(playlist, "a recorded segment", 30)
    assert listing.text.startswith("#EXTM3U")
    segment = next(line for line in listing.text.splitlines() if line and line[0] != "#")
    media = await client.get(f"/v2/streams/{stream_id}/hls/{segment.rsplit('/', 1)[-1]}",
                             headers=auth)
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp2t"
    assert media.content[0] == 0x47  # MPEG-TS sync byte

    for path in (f"/v2/snapshots/{snap['id']}", f"/v2/bookmarks/{mark['id']}"):
        deleted = await client.delete(path, headers=auth)
        assert deleted.status_code == 204 and deleted.content == b""
    stopped = await client.delete(f"/v2/streams/{stream_id}", headers=auth)
    assert stopped.status_code == 204
    stop = (await client.post(f"/api/v1/devices/{device_id}/stop-stream")).json()
    SHAPES["stop"].check(stop, "stop-stream")
    assert stop == {"status": "success", "device_id": device_id, "stopped": False}
    restarted = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert restarted.json()["v2_stream_id"] != stream_id
    stop = (await client.post(f"/api/v1/devices/{device_id}/stop-stream")).json()
    assert stop == {"status": "success", "device_id": device_id, "stopped": True}


async def test_a_camera_with_audio_adds_the_audio_producer_the_mediasoup_way(
        client: httpx.AsyncClient, admin_token, media_node, worker, start_camera):
    auth = bearer(admin_token)
    camera = start_camera(audio=True, audio_codec="aac")
    device = await client.post("/api/v1/devices", json={"name": "Lobby", "rtsp_url": camera.url})
    assert device.status_code == 201, device.text
    device_id = device.json()["id"]
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    body = started.json()
    SHAPES["start"].check(body, "start-stream (audio)")
    SHAPES["producers"].check(body["producers"], "start-stream (audio) .producers")
    assert set(body["producers"]) == {"video", "audio"}
    again = (await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)).json()
    SHAPES["reconnect"].check(again, "start-stream (audio, reconnect)")
    assert again["producers"] == body["producers"]
    stream_id = body["v2_stream_id"]

    rtp = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                            headers=auth)).json()["rtp_capabilities"]
    SHAPES["rtp_capabilities"].check(rtp, "router-capabilities (audio)")
    video, audio = rtp["codecs"]
    SHAPES["router_codec"].check(video, "router-capabilities (audio) video codec")
    SHAPES["router_audio_codec"].check(audio, "router-capabilities (audio) audio codec")
    assert (audio["kind"], audio["mimeType"], audio["clockRate"], audio["channels"]) == (
        "audio", "audio/opus", 48000, 2)

    consumed = await client.post(f"/v2/streams/{stream_id}/consume", headers=auth, json={
        "client_id": "ruth-ai-instance-1", "rtp_capabilities": rtp, "kind": "audio"})
    assert consumed.status_code == 201, consumed.text
    consumer = consumed.json()
    SHAPES["consume"].check(consumer, "consume (audio)")
    SHAPES["transport"].check(consumer["transport"], "consume (audio) .transport")
    SHAPES["rtp_parameters"].check(consumer["rtp_parameters"], "consume (audio) .rtp_parameters")
    (codec,) = consumer["rtp_parameters"]["codecs"]
    SHAPES["consumer_codec"].check(codec, "consume (audio) codec")
    assert (codec["mimeType"], codec["payloadType"]) == ("audio/opus", audio["preferredPayloadType"])
    for encoding in consumer["rtp_parameters"]["encodings"]:
        SHAPES["encoding"].check(encoding, "consume (audio) .encodings[]")
    consumer_id = consumer["consumer_id"]
    connected = await client.post(
        f"/v2/streams/{stream_id}/consumers/{consumer_id}/connect", headers=auth,
        json={"dtls_parameters": {"role": "client", "fingerprints": [
            {"algorithm": "sha-256", "value": ":".join(["AB"] * 32)}]}})
    assert connected.json() == {"status": "connected", "consumer_id": consumer_id,
                                "transport_id": consumer["transport"]["id"]}
    consumers = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=auth)).json()
    for row in consumers["consumers"]:
        SHAPES["consumer"].check(row, "consumers[] (audio)")
    detached = await client.delete(f"/v2/streams/{stream_id}/consumers/{consumer_id}",
                                   headers=auth)
    assert detached.status_code == 204
    assert (await client.delete(f"/v2/streams/{stream_id}", headers=auth)).status_code == 204


async def test_unknown_device_has_the_standard_error_shape(client: httpx.AsyncClient):
    missing = await client.get("/api/v1/devices/550e8400-e29b-41d4-a716-446655440000")
    assert missing.status_code == 404
    assert set(missing.json()) == {"detail"} and isinstance(missing.json()["detail"], str)
