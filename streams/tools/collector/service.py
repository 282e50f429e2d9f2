"""The collector's HTTP service (DESIGN §9): `POST /v1/events`, `POST /v1/webhooks/{name}`,
`GET /v1/leadstage.js`, `GET /healthz`, `GET /metrics`.

Every accepted event goes through the rules of the worker's input gate (`wire/validation.py`)
and is answered 202 only after Kafka acknowledged it (acks=all, idempotent producer): a request
any of whose events Kafka did not acknowledge is answered 503, and a client that retries it with
the same event ids is de-duplicated (here for the events already acknowledged, downstream by
the worker in any case).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.adapters.acked_producer import AckedProducer, KafkaUnavailable
from streams.adapters.settings import CollectorSettings
from streams.tools.collector.keys import CollectKey, WatchedKeys
from streams.tools.collector.metrics import CollectorMetrics
from streams.wire.avro import AvroCodec
from streams.wire.connectors import MAX_ITEMS, Connector, Unverified
from streams.wire.json_lines import normalize, to_kafka_record
from streams.wire.validation import InvalidEvent

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
#: acknowledged (lead_id, event_id) pairs remembered, so a replayed delivery is not re-sent
RECENT_IDS = 200_000
EVENTS_ROUTE = "/v1/events"
JSON_TYPES = ("application/json", "application/x-ndjson")
_decode = msgspec.json.Decoder().decode


def _snippet() -> bytes:
    return resources.files("streams.tools.collector").joinpath("leadstage.js").read_bytes()


class Refused(Exception):
    """A request answered with `status` and a JSON error, before anything is sent."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


@dataclass
class Prepared:
    """A request's items, encoded: what goes to Kafka and what does not."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    ids: list[tuple[bytes, str]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    duplicates: int = 0


class Collector:
    def __init__(self, settings: CollectorSettings, keys: WatchedKeys,
                 connectors: Mapping[str, Connector], producer: AckedProducer,
                 codec: AvroCodec, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.connectors = dict(connectors)
        self.producer = producer
        self.codec = codec
        env = os.environ if env is None else env
        #: connector name -> its secret, for the connectors whose variable is set
        self.secrets = {name: env[c.verification.secret_env].encode()
                        for name, c in self.connectors.items()
                        if env.get(c.verification.secret_env)}
        for name, connector in self.connectors.items():
            if name not in self.secrets:
                log.warning("webhook connector %s is off: %s is not set", name,
                            connector.verification.secret_env)
        self.allowed_origins = frozenset(settings.allowed_origins)
        self.metrics = CollectorMetrics(
            (EVENTS_ROUTE, *(f"/v1/webhooks/{n}" for n in self.connectors)))
        self.in_flight = 0
        self.recent: OrderedDict[tuple[bytes, str], None] = OrderedDict()
        self.snippet = _snippet()

    # -- the application ------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._count])
        app.router.add_post(EVENTS_ROUTE, self.events)
        app.router.add_route("OPTIONS", EVENTS_ROUTE, self.preflight)
        app.router.add_post("/v1/webhooks/{name}", self.webhook)
        app.router.add_get("/v1/leadstage.js", self.script)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/metrics", self.scrape)
        return app

    @web.middleware
    async def _count(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        route = self._route_label(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.metrics.requests.labels(route, str(exc.status)).inc()
            raise
        except Exception:
            log.exception("collector: %s %s failed", request.method, route)
            self.metrics.requests.labels(route, "500").inc()
            return _json(500, {"error": "internal error"})
        self.metrics.requests.labels(route, str(response.status)).inc()
        return response

    def _route_label(self, request: web.Request) -> str:
        info = request.match_info
        if info.route.resource is None:
            return "other"
        canonical = info.route.resource.canonical
        if canonical == "/v1/webhooks/{name}":
            name = info.get("name", "")
            return f"/v1/webhooks/{name}" if name in self.connectors else "other"
        return canonical

    # -- POST /v1/events ------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        cors = self._cors(request)
        try:
            key = self._authenticate(request)
            content_type = request.content_type
            if content_type == "text/plain" and key.browser:
                content_type = "application/json"  # what fetch(keepalive) sends unpreflighted
            if content_type not in JSON_TYPES:
                raise Refused(415, "send application/json or application/x-ndjson")
            body = await self._body(request)
            items = self._items(body, content_type)
            prepared = self._prepare(items, key)
            response = await self._send(prepared, EVENTS_ROUTE)
        except Refused as refused:
            return _json(refused.status, {"error": str(refused)}, {**refused.headers, **cors})
        response.headers.update(cors)
        return response

    def _authenticate(self, request: web.Request) -> CollectKey:
        header = request.headers.get("Authorization", "")
        secret = header[7:].strip() if header[:7].lower() == "bearer " else ""
        from_query = False
        if not secret and request.query.get("key"):
            secret, from_query = request.query["key"], True
        if not secret:
            raise Refused(401, "missing key: send Authorization: Bearer KEY",
                          {"WWW-Authenticate": "Bearer"})
        key = self.keys.current().find(secret)
        if key is None:
            raise Refused(401, "unknown key", {"WWW-Authenticate": "Bearer"})
        origin = request.headers.get("Origin")
        if key.browser:
            if origin is None or origin.lower() not in key.origins:
                raise Refused(403, "this browser key may not be used from this origin")
        elif from_query:
            # a server key in a URL ends up in logs and histories: refuse it there
            raise Refused(401, "server keys go in the Authorization header",
                          {"WWW-Authenticate": "Bearer"})
        elif origin is not None:
            raise Refused(403, "a server key may not be used from a web page; make a browser "
                               "key bound to its origin")
        return key

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise Refused(413, f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            return await asyncio.wait_for(request.read(), self.settings.request_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            raise Refused(413, f"the body is over {MAX_BODY_BYTES} bytes") from None
        except TimeoutError:
            raise Refused(408, f"the body did not arrive within "
                               f"{self.settings.request_timeout_s} s") from None

    @staticmethod
    def _items(body: bytes, content_type: str) -> list[Any]:
        if content_type == "application/x-ndjson":
            lines = [line for line in body.split(b"\n") if line.strip()]
            if len(lines) > MAX_ITEMS:
                raise Refused(400, f"more than {MAX_ITEMS} events in one request")
            items: list[Any] = []
            for line in lines:
                try:
                    items.append(_decode(line))
                except msgspec.DecodeError as exc:
                    items.append(_Unparsed(f"invalid JSON: {exc}"))
            if not items:
                raise Refused(400, "no events in the body")
            return items
        try:
            decoded = _decode(body)
        except msgspec.DecodeError as exc:
            raise Refused(400, f"invalid JSON: {exc}") from None
        if isinstance(decoded, dict):
            return [decoded]
        if not isinstance(decoded, list):
            raise Refused(400, "send one event object or an array of them")
        if len(decoded) > MAX_ITEMS:
            raise Refused(400, f"more than {MAX_ITEMS} events in one request")
        if not decoded:
            raise Refused(400, "no events in the body")
        return decoded

    def _prepare(self, items: list[Any], key: CollectKey | None,
                 prepared: Prepared | None = None, indexes: list[int] | None = None
                 ) -> Prepared:
        """Normalise, check and encode each item; items of another source than the key's
        refuse the whole request (403)."""
        out = prepared or Prepared()
        now_ms = int(time.time() * 1000)
        recent, codec = self.recent, self.codec
        for position, item in enumerate(items):
            index = position if indexes is None else indexes[position]
            if isinstance(item, _Unparsed):
                out.rejected.append({"index": index, "reason": item.reason})
                continue
            if not isinstance(item, dict):
                out.rejected.append({"index": index, "reason": "not a JSON object"})
                continue
            if key is not None:
                source = item.get("source")
                if source is None:
                    item["source"] = key.source
                elif source != key.source:
                    raise Refused(403, f"event {index} has source {str(source)[:16]!r}; this "
                                       f"key writes {key.source} events only")
            try:
                record = normalize(item)
                pair = to_kafka_record(record, codec, now_ms)
            except InvalidEvent as exc:
                out.rejected.append({"index": index, "reason": str(exc)})
                continue
            ident = (pair[0], record["event_id"])
            if ident in recent:
                out.duplicates += 1
                continue
            out.records.append(pair)
            out.ids.append(ident)
        return out

    async def _send(self, prepared: Prepared, route: str) -> web.Response:
        counted = self.metrics.events
        if prepared.rejected:
            counted.labels(route, "rejected").inc(len(prepared.rejected))
        if prepared.ignored:
            counted.labels(route, "ignored").inc(prepared.ignored)
        if prepared.duplicates:
            counted.labels(route, "duplicate").inc(prepared.duplicates)
        accepted = len(prepared.records) + prepared.duplicates
        if not accepted and route == EVENTS_ROUTE:
            return _json(400, {"error": "no valid event", "accepted": 0,
                               "rejected": prepared.rejected})
        size = len(prepared.records)
        if size:
            if self.in_flight + size > self.settings.max_in_flight:
                raise Refused(429, "too many events waiting for Kafka; retry shortly",
                              {"Retry-After": "1"})
            self.in_flight += size
            started = time.perf_counter()
            try:
                outcome = await self.producer.send_batch(prepared.records)
            except KafkaUnavailable as exc:
                counted.labels(route, "failed").inc(size)
                log.warning("Kafka took none of %d events: %s", size, exc)
                raise Refused(503, "Kafka is unavailable; retry with the same event ids",
                              {"Retry-After": "5"}) from None
            finally:
                self.in_flight -= size
            self.metrics.kafka_seconds.observe(time.perf_counter() - started)
            if outcome.failed:
                counted.labels(route, "failed").inc(outcome.failed)
                if outcome.acknowledged:
                    counted.labels(route, "accepted").inc(outcome.acknowledged)
                log.warning("Kafka did not acknowledge %d of %d events (%s)", outcome.failed,
                            size, outcome.error)
                raise Refused(503, f"Kafka did not acknowledge {outcome.failed} of {size} "
                                   "events; retry with the same event ids",
                              {"Retry-After": "5"})
            self._remember(prepared.ids)
            counted.labels(route, "accepted").inc(size)
        body: dict[str, Any] = {"accepted": accepted, "rejected": prepared.rejected}
        if route != EVENTS_ROUTE:
            body["ignored"] = prepared.ignored
        return _json(202, body)

    def _remember(self, ids: list[tuple[bytes, str]]) -> None:
        recent = self.recent
        for ident in ids:
            recent[ident] = None
        overflow = len(recent) - RECENT_IDS
        for _ in range(max(0, overflow)):
            recent.popitem(last=False)

    # -- CORS -------------------------------------------------------------------------------

    def _cors(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None:
            return {}
        lowered = origin.lower()
        if lowered not in self.allowed_origins and lowered not in self.keys.current().origins:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def preflight(self, request: web.Request) -> web.Response:
        cors = self._cors(request)
        if not cors:
            return web.Response(status=403, text="origin not allowed")
        return web.Response(status=204, headers={
            **cors, "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600"})

    # -- POST /v1/webhooks/{name} ---------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        connector = self.connectors.get(name)
        try:
            if connector is None:
                raise Refused(404, "no such connector")
            secret = self.secrets.get(name)
            if secret is None:
                raise Refused(503, f"connector {name} is not configured: "
                                   f"{connector.verification.secret_env} is not set")
            body = await self._body(request)
            try:
                connector.verification.check(secret, request.method, self._public_url(request),
                                             body, request.headers, int(time.time() * 1000))
            except Unverified as exc:
                raise Refused(401, str(exc)) from None
            try:
                payload = _decode(body)
            except msgspec.DecodeError as exc:
                raise Refused(400, f"invalid JSON: {exc}") from None
            items = connector.items_of(payload)
            if len(items) > MAX_ITEMS:
                raise Refused(400, f"more than {MAX_ITEMS} items in one request")
            prepared = Prepared()
            events, indexes = [], []
            for index, item in enumerate(items):
                mapped = connector.map_item(index, item)
                if mapped.ignored:
                    prepared.ignored += 1
                elif mapped.event is None:
                    prepared.rejected.append({"index": index, "reason": mapped.problem})
                else:
                    events.append(mapped.event)
                    indexes.append(index)
            self._prepare(events, None, prepared, indexes)
            return await self._send(prepared, f"/v1/webhooks/{name}")
        except Refused as refused:
            return _json(refused.status, {"error": str(refused)}, refused.headers)

    def _public_url(self, request: web.Request) -> str:
        """The URL the sender called, as it signed it (behind a proxy: the public address)."""
        base = self.settings.public_url or f"{request.scheme}://{request.host}"
        return base + request.raw_path

    # -- the rest -------------------------------------------------------------------------

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(body=self.snippet, headers={
            "Content-Type": "application/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300"})

    async def health(self, request: web.Request) -> web.Response:
        down = self.producer.brokers_down
        return _json(503 if down else 200, {"status": "kafka unreachable" if down else "ok",
                                            "in_flight": self.in_flight})

    async def scrape(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


class _Unparsed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_encode = msgspec.json.Encoder().encode


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
          ) -> web.Response:
    return web.Response(status=status, body=_encode(body), content_type="application/json",
                        headers=headers)
