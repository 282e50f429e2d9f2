"""Faust's aiohttp web server, serving only the pages the worker registers: Faust answers
`GET /` with `{"status": "OK"}` whenever its statistics page is off, which tells a scanner what
runs there and says nothing true about the worker's health (that is `/healthz`)."""

from __future__ import annotations

from typing import Any, ClassVar

from faust.web.drivers.aiohttp import Web


class QuietWeb(Web):
    production_blueprints: ClassVar[list[Any]] = []


def quiet_web(app: Any) -> QuietWeb:
    """The web driver for `app` (Faust's App._new_web)."""
    return QuietWeb(app)
