"""aiohttp servers that a slow or greedy client cannot exhaust, for the worker's pages and the
collector (README "Security"):

- request lines (URLs) and header fields at most 4 KiB, at most 64 headers;
- at most `max_connections` connections at once (more are closed on arrival);
- a first request that has not arrived whole after `first_request_s` closes its connection, so a
  slow-drip client cannot hold one; idle keep-alive connections close after 15 s;
- no `Server: Python/... aiohttp/...` banner.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

MAX_LINE_BYTES = 4096
MAX_FIELD_BYTES = 4096
MAX_HEADERS = 64
KEEPALIVE_S = 15.0


async def no_banner(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "leadstage"


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server bounds connections and closes slow first requests."""

    def __init__(self, app: web.Application, max_connections: int, first_request_s: float,
                 **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_LINE_BYTES)
        kwargs.setdefault("max_field_size", MAX_FIELD_BYTES)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_S)
        kwargs.setdefault("access_log", None)
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.first_request_s = first_request_s

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        admit = server.connection_made
        loop = asyncio.get_running_loop()

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            if len(server.connections) >= self.max_connections:
                transport.close()
                return
            admit(handler, transport)

            def too_slow() -> None:
                # aiohttp's own count of requests parsed on this connection (3.x)
                if handler._request_count == 0 and not transport.is_closing():
                    transport.close()

            loop.call_later(self.first_request_s, too_slow)

        server.connection_made = connection_made  # type: ignore[method-assign]
        return server
