"""`python -m vas_client clip …` / `snapshot …`: make and download clips and snapshots from
the command line, showing progress while VAS works. Credentials from VAS_URL,
VAS_CLIENT_ID and VAS_CLIENT_SECRET."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vas_client.http import VasClient, VasError


def _line(text: str) -> None:
    sys.stderr.write(f"\r\033[K{text}")
    sys.stderr.flush()


async def _wait(client: VasClient, path: str, describe: Any) -> dict[str, Any]:
    began = time.monotonic()
    while True:
        body: dict[str, Any] = await client.json("GET", path)
        if body["status"] != "processing":
            _line(f"{body['status']} after {time.monotonic() - began:.1f} s\n")
            if body["status"] != "ready":
                raise VasError(409, body.get("error"))
            return body
        _line(describe(body, time.monotonic() - began))
        await asyncio.sleep(0.5)


async def _download(client: VasClient, url: str, out: Path) -> None:
    headers = {"Authorization": f"Bearer {await client.token()}"}
    async with client._http.stream("GET", url, headers=headers) as answer:
        if answer.status_code >= 400:
            raise VasError(answer.status_code, (await answer.aread()).decode(errors="replace"))
        total = int(answer.headers.get("content-length", 0))
        done = 0
        with out.open("wb") as fh:
            async for chunk in answer.aiter_bytes():
                fh.write(chunk)
                done += len(chunk)
                share = f" ({100 * done / total:.0f} %)" if total else ""
                _line(f"downloading {out.name}: {done / 1e6:.1f} MB{share}")
    _line(f"saved {out} ({done / 1e6:.1f} MB)\n")


def _clip_progress(body: dict[str, Any], elapsed: float) -> str:
    end = datetime.fromisoformat(body["end_time"].replace("Z", "+00:00"))
    remaining = (end - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        return f"recording the clip: {remaining:.0f} s to go ({elapsed:.0f} s)"
    return f"cutting the clip ({elapsed:.0f} s)"


async def clip(args: argparse.Namespace) -> None:
    async with VasClient() as client:
        body: dict[str, Any] = {"before_seconds": args.before, "after_seconds": args.after,
                                "label": args.label, "created_by": "vas_client"}
        if args.at:
            body.update(source="historical", center_timestamp=args.at)
        bookmark = await client.json("POST", f"/v2/streams/{args.stream}/bookmarks", json=body)
        ready = await _wait(client, f"/v2/bookmarks/{bookmark['id']}", _clip_progress)
        await _download(client, ready["video_url"], Path(args.out or f"{bookmark['id']}.mp4"))


async def snapshot(args: argparse.Namespace) -> None:
    async with VasClient() as client:
        body: dict[str, Any] = {"source": "historical", "timestamp": args.at} if args.at else {}
        snap = await client.json("POST", f"/v2/streams/{args.stream}/snapshots", json=body)
        ready = await _wait(client, f"/v2/snapshots/{snap['id']}",
                            lambda _, elapsed: f"making the snapshot ({elapsed:.1f} s)")
        await _download(client, ready["image_url"], Path(args.out or f"{snap['id']}.jpg"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m vas_client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("clip", help="bookmark a moment and download its MP4")
    c.add_argument("stream")
    c.add_argument("--at", help="center time (ISO 8601); default: now (live)")
    c.add_argument("--before", type=float, default=5.0)
    c.add_argument("--after", type=float, default=10.0)
    c.add_argument("--label")
    c.add_argument("--out")
    s = commands.add_parser("snapshot", help="capture a frame and download its JPEG")
    s.add_argument("stream")
    s.add_argument("--at", help="time (ISO 8601); default: now (live)")
    s.add_argument("--out")
    args = parser.parse_args()
    try:
        asyncio.run({"clip": clip, "snapshot": snapshot}[args.command](args))
    except VasError as exc:
        sys.stderr.write(f"\nvas: {exc.status}: {exc.detail}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
