"""The built-in viewer: one HTML page with its own JS and CSS, served without auth.

The page signs in with the client credentials a person types and keeps the token in a JS
variable only; these routes therefore hold nothing secret and need no guard. The files are
read once at import (a missing file fails the start, not a request) and sent with
`Cache-Control: no-cache` and an ETag, so a browser revalidates and picks up a new version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from core.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The page loads nothing from elsewhere and runs no inline code; blob: carries the snapshot
# and the bookmark clip, fetched with the Bearer header. form-action 'none': should the JS
# fail, a form submit cannot put the secret into a URL.
PAGE_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' blob:",
    "media-src 'self' blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the viewer, with its content type and ETag."""

    body: bytes
    media_type: str
    etag: str


def _load(name: str, media_type: str) -> Asset:
    body = (STATIC_DIR / name).read_bytes()
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


PAGE = _load("viewer.html", "text/html")
ASSETS = {
    "viewer.js": _load("viewer.js", "text/javascript"),
    "viewer.css": _load("viewer.css", "text/css"),
    "api.js": _load("api.js", "text/javascript"),
    "captures.js": _load("captures.js", "text/javascript"),
    "health.js": _load("health.js", "text/javascript"),
    "recordings.js": _load("recordings.js", "text/javascript"),
    "events.js": _load("events.js", "text/javascript"),
    "detection.js": _load("detection.js", "text/javascript"),
}


def _send(request: Request[Any, Any, Any], asset: Asset, extra: dict[str, str]) -> Response[bytes]:
    """The asset, or 304 when the browser's copy (If-None-Match) is current."""
    headers = {"Cache-Control": "no-cache", "ETag": asset.etag,
               "X-Content-Type-Options": "nosniff", **extra}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@get("/", security=[])
async def viewer_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The viewer page: sign in, devices and streams, live video over WHEP, captures."""
    return _send(request, PAGE, {"Content-Security-Policy": PAGE_POLICY,
                                 "Referrer-Policy": "no-referrer"})


@get("/static/{name:str}", security=[])
async def viewer_asset(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """The page's script and stylesheet (only these names)."""
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound(f"No static file {name!r}")
    return _send(request, asset, {})


router = Router(path="/", route_handlers=[viewer_page, viewer_asset], include_in_schema=False,
                tags=["viewer"])
