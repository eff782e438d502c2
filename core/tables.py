"""Piccolo tables: the whole persistent state of VAS.

Rows refer to each other by plain UUID columns rather than foreign keys, so that a deleted
device keeps the history of its streams, snapshots and clips.
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Boolean,
    DoublePrecision,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class ApiClient(Table, tablename="vas_api_client"):
    """An API client: id, salted secret hash, scopes, and its one active refresh token."""

    client_id = Varchar(length=128, unique=True, index=True)
    secret_hash = Varchar(length=256)
    scopes = JSON(default=[])
    created_at = Timestamptz()
    refresh_token_hash = Varchar(length=64, null=True, default=None, index=True)
    refresh_expires_at = Timestamptz(null=True, default=None)


class Device(Table, tablename="vas_device"):
    """A camera. `rtsp_url` is kept without its password; `rtsp_secret` holds it encrypted."""

    id = UUID(primary_key=True)
    name = Varchar(length=255)
    description = Text(null=True, default=None)
    rtsp_url = Text()
    rtsp_secret = Text(null=True, default=None)
    rtsp_transport = Varchar(length=8, default="tcp")
    location = Varchar(length=255, null=True, default=None)
    is_active = Boolean(default=False)
    created_at = Timestamptz()
    updated_at = Timestamptz(null=True, default=None)
    # OmniSight camera fields, kept and shown; ingest uses only the URL (docs/omnisight.md).
    ip_address = Varchar(length=255, null=True, default=None)
    model = Varchar(length=255, null=True, default=None)
    settings = JSON(null=True, default=None)


class Stream(Table, tablename="vas_stream"):
    """One ingest of one camera, moving through the states of `core.stream_states`."""

    id = UUID(primary_key=True)
    camera_id = UUID(index=True)
    name = Varchar(length=255)
    state = Varchar(length=16, index=True)
    last_error = Text(null=True, default=None)
    # The guide's code of the error in `last_error` (e.g. RTSP_TIMEOUT), when it has one.
    error_code = Varchar(length=32, null=True, default=None)
    codec_config = JSON(null=True, default=None)
    metrics = JSON(null=True, default=None)
    checked_at = Timestamptz(null=True, default=None)
    node_id = Varchar(length=64, null=True, default=None)
    lease_expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    started_at = Timestamptz(null=True, default=None)
    stopped_at = Timestamptz(null=True, default=None)


class Producer(Table, tablename="vas_producer"):
    """The single video producer of a stream (the guide's mediasoup producer)."""

    id = UUID(primary_key=True)
    stream_id = UUID(index=True)
    mediasoup_id = Varchar(length=64, unique=True)
    transport_id = Varchar(length=64)
    state = Varchar(length=16)
    ssrc = BigInt(null=True, default=None)
    created_at = Timestamptz()


class Consumer(Table, tablename="vas_consumer"):
    """A WebRTC viewer attached to a stream."""

    id = UUID(primary_key=True)
    stream_id = UUID(index=True)
    client_id = Varchar(length=128)
    state = Varchar(length=16)
    transport_id = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz()
    last_seen_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)


class MediaNode(Table, tablename="vas_media_node"):
    """A live media-node process: its control queue, capacity and last heartbeat."""

    node_id = Varchar(length=64, unique=True, index=True)
    queue_name = Varchar(length=128)
    capacity = Integer()
    streams = Integer(default=0)
    started_at = Timestamptz()
    heartbeat_at = Timestamptz()


class HlsSegment(Table, tablename="vas_hls_segment"):
    """One recorded MPEG-TS segment: the index that maps a wall-clock time to a file."""

    stream_id = UUID(index=True)
    sequence = BigInt()
    filename = Varchar(length=64)
    start_at = Timestamptz(index=True)
    end_at = Timestamptz()
    duration = DoublePrecision()
    size = BigInt()
    discontinuity = Boolean(default=False)


class Snapshot(Table, tablename="vas_snapshot"):
    """A JPEG of one moment of a stream, made by a job (`status`: processing → ready/failed)."""

    id = UUID(primary_key=True)
    stream_id = UUID(index=True)
    timestamp = Timestamptz(index=True)
    source = Varchar(length=16)
    created_by = Varchar(length=128, null=True, default=None)
    format = Varchar(length=8, default="jpg")
    file_size = BigInt(null=True, default=None)
    width = Integer(null=True, default=None)
    height = Integer(null=True, default=None)
    metadata = JSON(null=True, default=None)
    status = Varchar(length=16, index=True)
    error = Text(null=True, default=None)
    attempts = Integer(default=0)
    created_at = Timestamptz(index=True)
    updated_at = Timestamptz()


class Bookmark(Table, tablename="vas_bookmark"):
    """An MP4 clip around a moment, with a thumbnail, made by a job from the HLS recording."""

    id = UUID(primary_key=True)
    stream_id = UUID(index=True)
    center_timestamp = Timestamptz()
    start_time = Timestamptz(index=True)
    end_time = Timestamptz()
    source = Varchar(length=16)
    label = Varchar(length=500, null=True, default=None)
    created_by = Varchar(length=128, null=True, default=None)
    event_type = Varchar(length=64, null=True, default=None, index=True)
    confidence = DoublePrecision(null=True, default=None)
    tags = JSON(default=[])
    metadata = JSON(null=True, default=None)
    status = Varchar(length=16, index=True)
    error = Text(null=True, default=None)
    video_size = BigInt(null=True, default=None)
    attempts = Integer(default=0)
    created_at = Timestamptz(index=True)
    updated_at = Timestamptz()


class User(Table, tablename="vas_user"):
    """An OmniSight user account: argon2id password hash, role, free-form settings.

    `email` is stored lowercased (unique); `username_key` is the lowercased username, so
    usernames are unique regardless of case.
    """

    id = UUID(primary_key=True)
    username = Varchar(length=64)
    username_key = Varchar(length=64, unique=True, index=True)
    email = Varchar(length=254, unique=True, index=True)
    password_hash = Varchar(length=256)
    role = Varchar(length=16)
    settings = JSON(default={})
    disabled = Boolean(default=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    last_login = Timestamptz(null=True, default=None)


class UserSession(Table, tablename="vas_user_session"):
    """One sign-in of a user (a browser): the digest of its current refresh token."""

    id = UUID(primary_key=True)
    user_id = UUID(index=True)
    refresh_digest = Varchar(length=64)
    created_at = Timestamptz()
    last_used_at = Timestamptz()
    expires_at = Timestamptz(index=True)
    revoked_at = Timestamptz(null=True, default=None)


class Setting(Table, tablename="vas_setting"):
    """System settings shared by every process: one JSON value per section key."""

    key = Varchar(length=64, unique=True, index=True)
    value = JSON(default={})
    updated_at = Timestamptz()


class DetectionSetting(Table, tablename="vas_detection_setting"):
    """Detection settings: the global document (`scope` "global") and each camera's own
    fields (`scope` = the camera id); see core/detection_settings.py."""

    scope = Varchar(length=64, unique=True, index=True)
    value = JSON(default={})
    updated_at = Timestamptz()


class Event(Table, tablename="vas_event"):
    """A detection event (motion, person, vehicle, animal) or one an integrator posted
    (custom): its first moment, the last detection merged into it, its objects' boxes."""

    id = UUID(primary_key=True)
    camera_id = UUID(index=True)
    stream_id = UUID(null=True, default=None)
    recording_id = UUID(null=True, default=None, index=True)
    type = Varchar(length=16, index=True)
    source = Varchar(length=16, default="detector")
    start_at = Timestamptz(index=True)
    last_seen_at = Timestamptz()
    confidence = DoublePrecision()
    detected_objects = JSON(default=[])
    frame_width = Integer(null=True, default=None)
    frame_height = Integer(null=True, default=None)
    thumbnail = Boolean(default=False)
    details = JSON(default={})
    created_at = Timestamptz()
    updated_at = Timestamptz()


class RecordingSession(Table, tablename="vas_recording_session"):
    """An OmniSight recording: a session over a stream's HLS recorder. `kind` is `manual`
    (started through the API) or `continuous` (a stream's own recording: its id is the
    stream's id). `status` is `recording`, `completed`, `failed` or `deleted` (a tombstone of
    a continuous session, so that it is not shown again)."""

    id = UUID(primary_key=True)
    camera_id = UUID(index=True)
    stream_id = UUID(index=True)
    kind = Varchar(length=16)
    status = Varchar(length=16, index=True)
    start_at = Timestamptz(index=True)
    end_at = Timestamptz(null=True, default=None)
    segment_duration = Integer()
    format = Varchar(length=8)
    resolution = Varchar(length=16, null=True, default=None)
    error = Text(null=True, default=None)
    exported_until = Timestamptz(null=True, default=None)
    export_attempts = Integer(default=0)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class RecordingSegment(Table, tablename="vas_recording_segment"):
    """A file of a manual recording: [start, end] of the recorder, remuxed into the session's
    format, under `<data dir>/recordings/sessions/<session id>/`."""

    id = UUID(primary_key=True)
    session_id = UUID(index=True)
    sequence = Integer()
    filename = Varchar(length=64)
    thumbnail = Varchar(length=64, null=True, default=None)
    start_at = Timestamptz(index=True)
    end_at = Timestamptz()
    duration = DoublePrecision()
    size = BigInt()
    format = Varchar(length=8)
    resolution = Varchar(length=16, null=True, default=None)
    created_at = Timestamptz()


TABLES: tuple[type[Table], ...] = (
    ApiClient, Device, Stream, Producer, Consumer, MediaNode, HlsSegment, Snapshot, Bookmark,
    User, UserSession, Setting, DetectionSetting, Event, RecordingSession, RecordingSegment,
)
