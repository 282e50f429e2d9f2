"""Running the collector: the Kafka producer, the guarded HTTP server, a clean stop on SIGTERM
(every event already handed to Kafka is given the producer's timeout to be acknowledged)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from streams.adapters.acked_producer import AckedProducer
from streams.adapters.http_server import GuardedRunner, no_banner
from streams.adapters.settings import CollectorSettings, Settings
from streams.tools.collector.keys import WatchedKeys
from streams.tools.collector.service import Collector
from streams.wire.avro import avro_codec
from streams.wire.connectors import load_connectors

log = logging.getLogger("leadstage.collect")


def build(settings: Settings, collect: CollectorSettings) -> Collector:
    """The collector for these settings; KeysError or ConnectorError when its files are bad."""
    keys = WatchedKeys(collect.keys_file, log.error)
    connectors = load_connectors(collect.connectors_dir)
    producer = AckedProducer(settings, settings.topic_activity,
                             delivery_timeout_ms=collect.kafka_timeout_ms)
    return Collector(collect, keys, connectors, producer, avro_codec())


async def serve(collector: Collector, stop: asyncio.Event) -> None:
    settings = collector.settings
    app = collector.application()
    app.on_response_prepare.append(no_banner)
    runner = GuardedRunner(app, settings.max_connections, settings.request_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()
    log.warning("leadstage collect listening on http://%s:%d (%d keys, connectors: %s)",
                settings.host, settings.port, len(collector.keys.current().keys),
                ", ".join(sorted(collector.secrets)) or "none")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        loop = asyncio.get_running_loop()
        left = await loop.run_in_executor(None, collector.producer.close,
                                          settings.kafka_timeout_ms / 1000)
        if left:
            log.error("%d events handed to Kafka were not acknowledged before the stop", left)


def run(settings: Settings, collect: CollectorSettings) -> None:
    collector = build(settings, collect)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(collector, stop)

    asyncio.run(main())
