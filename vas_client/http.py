"""The REST side: tokens (refreshed before they expire) and the calls notebooks use."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx


class VasError(RuntimeError):
    """A VAS call answered with an error status; `detail` is the guide's error body."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class VasClient:
    """An async client; credentials default to VAS_URL, VAS_CLIENT_ID, VAS_CLIENT_SECRET."""

    def __init__(self, url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, timeout: float = 40.0) -> None:
        self.url = (url or os.environ.get("VAS_URL") or "http://127.0.0.1:8000").rstrip("/")
        self._client_id = client_id or os.environ.get("VAS_CLIENT_ID") or "admin"
        self._client_secret = client_secret or os.environ.get("VAS_CLIENT_SECRET") or ""
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0

    async def __aenter__(self) -> VasClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def token(self) -> str:
        """A valid access token, refreshed at ~80 % of its lifetime (the guide's advice)."""
        if self._access and time.monotonic() < self._expires_at:
            return self._access
        body: dict[str, Any] | None = None
        if self._refresh:
            answer = await self._http.post("/v2/auth/token/refresh",
                                           json={"refresh_token": self._refresh})
            body = answer.json() if answer.status_code == 200 else None
        if body is None:
            answer = await self._http.post("/v2/auth/token", json={
                "client_id": self._client_id, "client_secret": self._client_secret})
            if answer.status_code != 200:
                raise VasError(answer.status_code, answer.json().get("detail"))
            body = answer.json()
        self._access, self._refresh = body["access_token"], body["refresh_token"]
        self._expires_at = time.monotonic() + 0.8 * float(body["expires_in"])
        return self._access

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated call; error statuses raise `VasError`."""
        headers = {"Authorization": f"Bearer {await self.token()}", **kwargs.pop("headers", {})}
        answer = await self._http.request(method, path, headers=headers, **kwargs)
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail")
            except ValueError:
                detail = answer.text
            raise VasError(answer.status_code, detail)
        return answer

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self.request(method, path, **kwargs)
        return answer.json() if answer.content else None

    # -- the calls of the guide's flow ---------------------------------------------------

    async def devices(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.json("GET", "/api/v1/devices")
        return result

    async def add_device(self, name: str, rtsp_url: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.json(
            "POST", "/api/v1/devices", json={"name": name, "rtsp_url": rtsp_url, **fields})
        return result

    async def ensure_stream(self, device_id: str) -> str:
        """The device's LIVE stream id: check its status first, start it only if needed."""
        status = await self.json("GET", f"/api/v1/devices/{device_id}/status")
        if status["streaming"]["active"]:
            streams = await self.json("GET", "/v2/streams",
                                      params={"camera_id": device_id, "state": "LIVE"})
            if streams["streams"]:
                return str(streams["streams"][0]["id"])
        started = await self.json("POST", f"/api/v1/devices/{device_id}/start-stream")
        return str(started["v2_stream_id"])

    async def stream(self, stream_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.json("GET", f"/v2/streams/{stream_id}")
        return result

    async def health(self, stream_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.json("GET", f"/v2/streams/{stream_id}/health")
        return result
