"""A webhook receiver for tests: an aiohttp server on 127.0.0.1 in a thread of its own, whose
answer to each request a test decides, recording every request. Stopped by the test."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from streams.tools.forwarder import verify


@dataclass
class Received:
    event_id: str
    lead_id: str
    sequence: int
    status: int
    signed: bool
    at: float


#: (request body, as JSON) -> (status, seconds to sleep first, headers)
Behaviour = Callable[[dict[str, Any]], tuple[int, float, dict[str, str]]]


class Receiver:
    def __init__(self, secret: bytes, behaviour: Behaviour) -> None:
        self.secret = secret
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _hook(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()  # a delayed answer may complete after later requests
        body = await request.read()
        change = json.loads(body)
        status, delay, headers = self.behaviour(change)
        if delay:
            await asyncio.sleep(delay)
        signed = verify(self.secret, request.headers.get("Leadstage-Signature", ""), body)
        assert request.headers.get("Idempotency-Key") == change["event_id"]
        with self.lock:
            self.received.append(Received(change["event_id"], change["lead_id"],
                                          change["sequence"], status, signed, arrived))
        return web.Response(status=status, text="refused" if status == 400 else "",
                            headers=headers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]
