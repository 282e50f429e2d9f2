"""Builds a worker from its settings (DESIGN §5, §7): the Faust app, the lead table, the pipeline,
its timers and its HTTP pages. Nothing runs at import; `streams.worker.faust_app` is the module
that builds one from the environment.

Definitions that fail `leadstage definitions check` are refused here (DefinitionsRefused, with
the checker's message), before anything connects to Kafka.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import faust

from streams.adapters.batch_consumer import BatchInput, BatchTransport
from streams.adapters.batch_sender import BatchSender
from streams.adapters.faust_codecs import register as register_codecs
from streams.adapters.faust_lifecycle import PromptExitWorker, PromptTableManager
from streams.adapters.faust_settings import faust_app_kwargs, static_member_id
from streams.adapters.faust_web import MAX_BODY_BYTES, QuietWeb, quiet_web
from streams.adapters.lead_store import LeadStore
from streams.adapters.rocksdb_store import table_options
from streams.adapters.settings import Settings
from streams.adapters.topics import (
    LEADS_TABLE,
    KafkaRefused,
    changelog_configs,
    prepare_topics,
)
from streams.core.definitions.checker import load_checked
from streams.core.definitions.compiler import CompiledDefinitions, compile_definitions
from streams.core.definitions.model import Definitions
from streams.core.stage_machine import StageMachine
from streams.worker.commit import OutputTopics
from streams.worker.metrics import Metrics
from streams.worker.pause_fence import PauseFence
from streams.worker.pipeline import LeadPipeline
from streams.worker.web import register_pages

log = logging.getLogger(__name__)

#: A killed worker's partitions move on after this (Faust's default is 60 s).
SESSION_TIMEOUT_S = 10.0


class DefinitionsRefused(Exception):
    """The definitions file did not pass the checker; the message is the checker's."""


class LeadstageApp(faust.App):
    #: the input topic and the coroutine each fetched batch of it goes to (see BatchConsumer)
    batch_input: BatchInput
    #: the topics the app creates on first start
    leadstage_settings: Settings

    def _new_transport(self) -> BatchTransport:
        return BatchTransport(self.conf.broker_consumer, self)

    def _new_web(self) -> QuietWeb:
        settings = self.leadstage_settings
        return quiet_web(self, settings.web_max_connections, settings.web_first_request_s)

    async def on_first_start(self) -> None:
        # Every topic must exist before the consumer subscribes: Faust ignores a missing input
        # topic, and one it creates itself may join the subscription only minutes later.
        try:
            _, warnings = prepare_topics(self.leadstage_settings)
        except KafkaRefused as exc:
            # nothing has started yet: a refusal, not a traceback (SystemExit passes through
            # mode's worker, which then stops the app as on a signal)
            print(f"leadstage worker: refusing to start.\n{exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        for warning in warnings:
            log.warning(warning)
        await super().on_first_start()


class LeadstageWorker(PromptExitWorker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust's terminal spinner sets the root logger to DEBUG so that it spins on every
        # record, and every aiokafka debug record is then built and dropped. No spinner; the
        # root logger keeps the -l level.
        self.spinner = None
        super().on_setup_root_logger(logger, level)


@dataclass
class WorkerAssembly:
    """Everything one worker is made of, for the timers, the HTTP pages and tests."""

    settings: Settings
    definitions: Definitions
    compiled: CompiledDefinitions
    app: LeadstageApp
    table: Any  # the Faust table of lead states
    metrics: Metrics
    pipeline: LeadPipeline
    fence: PauseFence


def build(settings: Settings) -> WorkerAssembly:
    definitions, problem = load_checked(str(settings.definitions))
    if definitions is None:
        raise DefinitionsRefused(problem)
    compiled = compile_definitions(definitions)
    register_codecs()
    app = LeadstageApp(
        settings.app_id,
        **faust_app_kwargs(
            settings,
            # No browsing of tables, routers, graphs or stats over HTTP (they expose state).
            web_router_enabled=False, web_tables_enabled=False, web_graph_enabled=False,
            web_stats_enabled=False,
            web_application_options={"client_max_size": MAX_BODY_BYTES},
            web_ssl_context=settings.web_tls_context(),
            Worker=LeadstageWorker,
            TableManager=PromptTableManager,
            stream_buffer_maxsize=8000,  # only records outside the batch paths use it
            broker_max_poll_records=settings.max_poll_records,
            consumer_max_fetch_size=4 * 1024 * 1024,
            broker_commit_every=10_000,
            broker_commit_interval=1.0,
            broker_session_timeout=SESSION_TIMEOUT_S,
            broker_heartbeat_interval=3.0,
            producer_acks=-1,
            producer_linger_ms=0,
            # aiokafka sends one batch per partition per request: a commit's states for a
            # partition should fit one batch.
            producer_max_batch_size=512 * 1024,
            producer_max_request_size=8 * 2**20,
        ),
    )
    app.leadstage_settings = settings
    if settings.instance_id:  # static membership (README "Restarts"); else dynamic
        app.conf.consumer_group_instance_id = static_member_id(
            settings.instance_id, str(app.conf.canonical_url))
    activity_topic = app.topic(settings.topic_activity, key_serializer="raw",
                               value_serializer="raw", partitions=settings.partitions)
    table = app.Table(LEADS_TABLE, partitions=settings.partitions, key_type=bytes,
                      value_type=bytes,
                      options=table_options(settings.state_compression),
                      extra_topic_configs=changelog_configs(settings),
                      recovery_buffer_size=10_000)
    metrics = Metrics()
    metrics.definitions_info.labels(str(definitions.version)).set(1)
    machine = StageMachine(compiled)
    metrics.initialise(definitions.stage_names, machine.handoff_stage, machine.verdict,
                       tuple(definitions.properties))
    # Fence well inside the session timeout: a loop away this long may have lost its partitions.
    fence = PauseFence(threshold_s=SESSION_TIMEOUT_S * 0.7)
    pipeline = LeadPipeline(
        machine, LeadStore(table),
        OutputTopics(settings.topic_stage_changes, settings.topic_stages, settings.topic_dlq),
        metrics,
        BatchSender.of_faust_app(app),
        fence,
    )
    # The input topic is consumed a fetch at a time by BatchConsumer, not through a Faust agent.
    # One handler at a time: a partition's events are handled in order, and offsets are
    # committed only after their batch.
    app.topics.add(activity_topic)
    app.batch_input = BatchInput(settings.topic_activity, pipeline.process_batch,
                                 settings.fetch_max_wait_ms, pipeline.drain)

    async def pause_fence() -> None:
        fence.tick()

    async def sweep() -> None:
        await pipeline.sweep()

    async def after_recovery() -> None:
        active = {tp.partition for tp in app.assignor.assigned_actives()
                  if tp.topic == settings.topic_activity}
        await pipeline.rescan(active)

    app.timer(interval=1.0)(pause_fence)
    app.timer(interval=settings.sweep_interval)(sweep)
    table.on_recover(after_recovery)
    register_pages(app, table, compiled, pipeline, settings.api_token)
    return WorkerAssembly(settings, definitions, compiled, app, table, metrics, pipeline, fence)
