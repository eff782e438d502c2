"""core.settings: defaults, validation, production refusing embedded fallbacks."""

from __future__ import annotations

import stat

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_embedded_defaults(tmp_path):
    settings = load_settings({"VAS_DATA_DIR": str(tmp_path)})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.database.url == f"sqlite:///{tmp_path / 'vas.sqlite3'}"
    assert settings.redis.url is None
    assert settings.media.announced_ips == ("127.0.0.1",)
    key_file = tmp_path / "jwt_secret"
    assert key_file.read_text().strip() == settings.auth.jwt_secret
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The generated key is kept: a second load reads the same one.
    assert load_settings({"VAS_DATA_DIR": str(tmp_path)}).auth.jwt_secret == settings.auth.jwt_secret


def test_environment_overrides(tmp_path):
    settings = load_settings({
        "VAS_DATA_DIR": str(tmp_path), "VAS_PORT": "9001", "JWT_SECRET_KEY": "k" * 40,
        "DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r:6379/1",
        "VAS_WEBRTC_ANNOUNCED_IP": "10.0.0.5, 203.0.113.9", "VAS_V1_AUTH": "required",
    })
    assert settings.server.port == 9001
    assert settings.database.is_postgres
    assert settings.auth.jwt_secret == "k" * 40
    assert settings.auth.v1_auth_required
    assert settings.media.announced_ips == ("10.0.0.5", "203.0.113.9")
    assert not (tmp_path / "jwt_secret").exists()


def test_node_id_is_the_pod_name_when_given(tmp_path):
    assert load_settings({"VAS_DATA_DIR": str(tmp_path)}).media.node_id is None
    named = load_settings({"VAS_DATA_DIR": str(tmp_path), "VAS_NODE_ID": "vas-media-node-0"})
    assert named.media.node_id == "vas-media-node-0"


@pytest.mark.parametrize("env, message", [
    ({"VAS_ENV": "production"}, "JWT_SECRET_KEY"),
    ({"VAS_ENV": "production", "JWT_SECRET_KEY": "k", "VAS_CREDENTIALS_KEY": "c",
      "DATABASE_URL": "postgresql://h/d"}, "REDIS_URL"),
    ({"VAS_ENV": "staging"}, "VAS_ENV"),
    ({"VAS_PORT": "http"}, "VAS_PORT"),
    ({"VAS_PORT": "70000"}, "VAS_PORT"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"VAS_V1_AUTH": "sometimes"}, "VAS_V1_AUTH"),
    ({"VAS_WEBRTC_PORT_MIN": "5000", "VAS_WEBRTC_PORT_MAX": "4000"}, "PORT_MAX"),
    ({"VAS_NODE_ID": "node 1"}, "VAS_NODE_ID"),
    ({"VAS_NODE_ID": "x" * 64}, "VAS_NODE_ID"),
])
def test_bad_configuration_fails_fast(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"VAS_DATA_DIR": str(tmp_path), **env})


def test_production_with_everything_set(tmp_path):
    settings = load_settings({
        "VAS_DATA_DIR": str(tmp_path), "VAS_ENV": "production", "JWT_SECRET_KEY": "k" * 40,
        "VAS_CREDENTIALS_KEY": "c" * 40, "DATABASE_URL": "postgresql://h/d",
        "REDIS_URL": "redis://h:6379/0", "VAS_CAMERA_NETWORKS": "10.20.0.0/16",
    })
    assert settings.server.production
    assert list(tmp_path.iterdir()) == []


def test_every_media_and_auth_default_is_the_documented_one(tmp_path):
    """The README's table of defaults, pinned: a change here is a change users see."""
    settings = load_settings({"VAS_DATA_DIR": str(tmp_path)})
    media, auth = settings.media, settings.auth
    assert media.rtsp_open_timeout_s == 10.0 and media.rtsp_read_timeout_s == 5.0
    assert media.heartbeat_s == 2.0 and media.lease_s == 10.0
    assert media.node_capacity == 16
    assert (media.port_min, media.port_max) == (40000, 40999)
    assert media.hls_segment_s == 6.0 and media.hls_retention_h == 168
    assert media.webrtc_silence_s == 30.0 and media.job_stale_s == 120.0
    assert media.max_consumers_per_stream == 100
    assert (auth.access_ttl_s, auth.refresh_ttl_s) == (3600, 7 * 24 * 3600)
    assert (auth.max_failed_logins, auth.failed_login_window_s) == (5, 300)
    assert (auth.max_consumers_per_client, auth.max_jobs_per_client,
            auth.max_ws_per_user) == (200, 20, 10)
    assert auth.admin_client_id == "admin" and not auth.v1_auth_required
    assert settings.server.env == "development" and settings.redis.namespace == "vas"


def test_a_dotenv_file_is_ignored_when_an_environment_is_passed(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VAS_PORT=9999\nVAS_NODE_CAPACITY=3\n")
    monkeypatch.chdir(tmp_path)
    explicit = load_settings({"VAS_DATA_DIR": str(tmp_path)})
    assert explicit.server.port == 8000 and explicit.media.node_capacity == 16
    monkeypatch.setenv("VAS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VAS_PORT", raising=False)
    monkeypatch.delenv("VAS_NODE_CAPACITY", raising=False)
    from_files = load_settings()
    assert from_files.server.port == 9999 and from_files.media.node_capacity == 3
