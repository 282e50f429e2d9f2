"""Faust's aiohttp web server, hardened for the worker's pages (README "Security"): the limits
of `http_server.GuardedRunner`, bodies at most 64 KiB (the worker's pages take none), and only
the pages the worker registers: Faust answers `GET /` with `{"status": "OK"}` whenever its
statistics page is off, which tells a scanner what runs there and nothing true about health.
"""

from __future__ import annotations

from typing import Any, ClassVar

from faust.web.drivers.aiohttp import Web

from streams.adapters.http_server import GuardedRunner, no_banner

MAX_BODY_BYTES = 64 * 1024


class QuietWeb(Web):
    production_blueprints: ClassVar[list[Any]] = []

    def __init__(self, app: Any, max_connections: int = 256, first_request_s: float = 10.0,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.web_app.on_response_prepare.append(no_banner)
        self._runner = GuardedRunner(self.web_app, max_connections, first_request_s)


def quiet_web(app: Any, max_connections: int = 256, first_request_s: float = 10.0) -> QuietWeb:
    """The web driver for `app` (Faust's App._new_web)."""
    return QuietWeb(app, max_connections, first_request_s)
