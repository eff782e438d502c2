"""A Litestar app with one "hello" route, served exactly as `vas api` serves VAS.

    python -m benchmarks.hello_app --port 8100

The framework's own ceiling on this machine: the same uvicorn options as `vas api`
(`api.cli.cmd_api`: no access log, no log config, sockets bound by `api.cli.bind_sockets`),
no database, no auth.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from litestar import Litestar, get

from api.cli import bind_sockets


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


app = Litestar(route_handlers=[hello])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config("benchmarks.hello_app:app", port=args.port, log_config=None,
                            access_log=False)
    sockets = bind_sockets(args.host.split(","), args.port)
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


if __name__ == "__main__":
    main()
