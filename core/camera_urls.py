"""The camera URL guard: which addresses VAS may open as a camera, checked before connecting.

Cameras live on private networks, so private ranges cannot be refused wholesale. Instead:

- only ``rtsp://`` and ``rtsps://`` (FFmpeg's protocol whitelist keeps the demuxer from
  following the URL anywhere else, see ``media.rtsp_source``);
- the host is resolved once here and the connection is pinned to that address: the URL
  handed to ingest names the IP, so a DNS answer that changes after the check (rebinding)
  reaches nothing;
- always refused: link-local (cloud metadata at 169.254.169.254), unspecified, multicast,
  broadcast and reserved addresses, and the service's own ports (API, Redis, PostgreSQL);
- loopback is refused in production unless a listed network holds it;
- ``VAS_CAMERA_NETWORKS`` (CIDRs) limits cameras to the deployment's camera subnets;
  ``any`` (or, in development, an empty list) allows every address not refused above.

``check_camera_url`` blocks on DNS: call it from a thread in async code.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from core.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("rtsp", "rtsps")
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
BROADCAST = ipaddress.IPv4Address("255.255.255.255")
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


class CameraUrlRefused(InvalidInput):
    """A camera URL the guard will not connect to; the message says why."""


@dataclass(frozen=True, slots=True)
class CameraPolicy:
    """Where cameras may be. ``networks`` empty with ``any_network`` False allows nothing."""

    networks: tuple[IpNetwork, ...] = ()
    any_network: bool = True
    allow_loopback: bool = True
    service_ports: frozenset[int] = frozenset()

    def refusal(self, address: IpAddress, port: int) -> str | None:
        """Why ``address:port`` may not be a camera, or None when it may."""
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        if address.is_link_local:
            return f"{address} is link-local (cloud metadata lives there)"
        if address.is_unspecified or (address.version == 4 and address in THIS_NETWORK):
            return f"{address} is the unspecified address"
        if address.is_multicast:
            return f"{address} is a multicast address"
        if address == BROADCAST:
            return f"{address} is the broadcast address"
        if address.is_reserved and not address.is_loopback:  # ::1 sits in reserved ::/8
            return f"{address} is a reserved address"
        if port in self.service_ports:
            return f"port {port} is one of this service's own ports (API, Redis, PostgreSQL)"
        listed = any(address in network for network in self.networks)
        if address.is_loopback and not (self.allow_loopback or listed):
            return f"{address} is loopback, which is not a camera network in production"
        if not (self.any_network or listed or (address.is_loopback and self.allow_loopback)):
            return f"{address} is outside VAS_CAMERA_NETWORKS"
        return None


@dataclass(frozen=True, slots=True)
class PinnedUrl:
    """A checked camera URL: ``url`` names the resolved address instead of the host."""

    url: str
    host: str
    address: str
    port: int


def parse_networks(raw: str) -> tuple[tuple[IpNetwork, ...], bool]:
    """``VAS_CAMERA_NETWORKS``: comma-separated CIDRs, or ``any``; returns (networks, any)."""
    text = raw.strip()
    if text.lower() == "any":
        return (), True
    networks: list[IpNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"VAS_CAMERA_NETWORKS must be CIDRs separated by commas or 'any', got {item!r}"
            ) from None
    return tuple(networks), False


def _resolve(host: str, port: int) -> IpAddress:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise CameraUrlRefused(f"rtsp_url host {host!r} does not resolve") from None
    # Prefer IPv4 as FFmpeg would; the first answer of the family is the one pinned.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return ipaddress.ip_address(infos[0][4][0])


def check_camera_url(url: str, policy: CameraPolicy) -> PinnedUrl:
    """Refuse ``url`` (``CameraUrlRefused``, a 400) or return it pinned to one address.

    Connects to nothing: only DNS is asked, once.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CameraUrlRefused("rtsp_url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise CameraUrlRefused("rtsp_url must start with rtsp:// or rtsps://")
    host = parts.hostname
    if not host:
        raise CameraUrlRefused("rtsp_url has no host")
    port = port if port is not None else DEFAULT_PORTS[scheme]
    address = _resolve(host, port)
    reason = policy.refusal(address, port)
    if reason is not None:
        raise CameraUrlRefused(f"rtsp_url refused: {reason}")
    literal = f"[{address}]" if address.version == 6 else str(address)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{literal}:{port}" if userinfo else f"{literal}:{port}"
    pinned = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return PinnedUrl(url=pinned, host=host, address=str(address), port=port)


def policy_for(settings: Settings) -> CameraPolicy:
    """The deployment's policy: its camera networks, loopback only outside production, and
    its own API, Redis and PostgreSQL ports refused."""
    ports = {settings.server.port}
    if settings.redis.url is not None and settings.redis.url.startswith("redis"):
        ports.add(_url_port(settings.redis.url, 6379))
    if settings.database.is_postgres:
        ports.add(_url_port(settings.database.url, 5432))
    return CameraPolicy(
        networks=settings.cameras.networks,
        any_network=settings.cameras.any_network,
        allow_loopback=not settings.server.production,
        service_ports=frozenset(ports),
    )


def _url_port(url: str, default: int) -> int:
    try:
        return urlsplit(url).port or default
    except ValueError:
        return default
