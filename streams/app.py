"""The Faust application (DESIGN §5, §7): `leadstage worker`, or `faust -A streams.app worker`.

Everything is built from the environment (DESIGN §8). Definitions that fail
`leadstage definitions check` stop start-up with the checker's message and exit status 2.
"""

from __future__ import annotations

import gc
import logging
import sys

import faust

from streams.batch_consumer import BatchInput, BatchTransport
from streams.batch_sender import BatchSender
from streams.config import Settings
from streams.definitions.checker import load_checked
from streams.definitions.compiler import compile_definitions
from streams.faust_codecs import register as register_codecs
from streams.faust_config import faust_app_kwargs
from streams.lead_store import LeadStore
from streams.metrics import Metrics
from streams.pause_fence import PauseFence
from streams.processor import Outputs, Processor
from streams.stage_machine import StageMachine
from streams.topics import ensure_topics

# Records per fetch, at most. With leads interleaved in time, most of the cost is per lead
# touched (load, decode, encode, changelog write), so larger batches, where a lead recurs, go
# faster: in make bench 2,000 -> 15,000 events/s, 10,000 -> 19,700, 20,000 -> 21,600. When the
# worker keeps up, fetches are small and latency stays low (p99 83 ms at 5,000 events/s).
BATCH_SIZE = 20000
SESSION_TIMEOUT_S = 10.0

settings = Settings.from_env()
definitions, problem = load_checked(str(settings.definitions))
if definitions is None:
    print(f"leadstage worker: refusing to start.\n{problem}", file=sys.stderr)
    sys.exit(2)
compiled = compile_definitions(definitions)
register_codecs()


class LeadstageApp(faust.App):
    #: the input topic and the coroutine each fetched batch of it goes to (see BatchConsumer)
    batch_input: BatchInput

    def _new_transport(self) -> BatchTransport:
        return BatchTransport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        # The input topic must exist before the consumer subscribes, or Faust ignores it.
        ensure_topics(settings)
        await super().on_first_start()


class LeadstageWorker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust's terminal spinner sets the root logger to DEBUG so that it spins on every
        # record: aiokafka's and Faust's debug records were then built and dropped, ~5% of the
        # worker's time under load. No spinner; the root logger keeps the -l level.
        self.spinner = None
        super().on_setup_root_logger(logger, level)


app = LeadstageApp(
    settings.app_id,
    **faust_app_kwargs(
        settings,
        # No browsing of tables, routers, graphs or stats over HTTP (they expose state).
        web_router_enabled=False, web_tables_enabled=False, web_graph_enabled=False,
        web_stats_enabled=False,
        Worker=LeadstageWorker,
        stream_buffer_maxsize=8000,  # only records outside the batch paths use it
        broker_max_poll_records=BATCH_SIZE,
        consumer_max_fetch_size=4 * 1024 * 1024,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        # A killed worker is noticed after 10 s, not Faust's default 60 s, so its partitions
        # move on (and a restarted worker recovers) quickly.
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=3.0,
        producer_acks=-1,
        producer_linger_ms=0,
        # aiokafka sends one batch per partition per request: with 16 KB batches a batch's
        # 2 MB of states took 16 round trips.
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=8 * 2**20,
    ),
)
activity_topic = app.topic(settings.topic_activity, key_serializer="raw",
                           value_serializer="raw", partitions=settings.partitions)
# Faust's RocksDB defaults (64 MB write buffers, 2 GB block cache) are per partition database:
# with 8 partitions the worker passed 500 MB. These keep it bounded: 4 MB caches instead of 16 MB
# took 110 MB off the peak with no measurable loss of speed (states are read once per batch and
# the OS page cache keeps the files).
ROCKSDB_OPTIONS = {"write_buffer_size": 4 * 2**20, "max_write_buffer_number": 2,
                   "target_file_size_base": 16 * 2**20, "block_cache_size": 4 * 2**20}
leads_table = app.Table("leads", partitions=settings.partitions, key_type=bytes,
                        value_type=bytes, options=dict(ROCKSDB_OPTIONS),
                        recovery_buffer_size=10_000)
metrics = Metrics()
metrics.definitions_info.labels(str(definitions.version)).set(1)
machine = StageMachine(compiled)
metrics.initialise(definitions.stage_names, machine.handoff_stage, machine.verdict)


# Fence well inside the session timeout: a loop away this long may have lost its partitions.
fence = PauseFence(threshold_s=SESSION_TIMEOUT_S * 0.7)
processor = Processor(
    machine, LeadStore(leads_table),
    Outputs(settings.topic_stage_changes, settings.topic_stages, settings.topic_dlq),
    metrics,
    BatchSender(lambda: app.producer._producer),  # Faust's started aiokafka producer
    fence,
)


# The input topic is consumed a fetch at a time by BatchConsumer, not through a Faust agent
# (Faust's per-event delivery cost more than the stage logic). One handler at a time: a
# partition's events are handled in order, and offsets are committed only after their batch.
app.topics.add(activity_topic)
app.batch_input = BatchInput(settings.topic_activity, processor.process_batch)


@app.timer(interval=1.0)
async def pause_fence() -> None:
    fence.tick()


@app.timer(interval=settings.sweep_interval)
async def sweep() -> None:
    await processor.sweep()


@leads_table.on_recover
async def after_recovery() -> None:
    active = {tp.partition for tp in app.assignor.assigned_actives()
              if tp.topic == settings.topic_activity}
    await processor.rescan(active)


from streams import web_views  # noqa: E402,F401  (registers the HTTP pages)

# The hot path allocates a few hundred objects per event, so CPython's default collector (a
# young-generation pass every 700 allocations, full passes over every live object) took ~20% of
# the worker's time in make bench. Collect young objects every 50,000 allocations instead, and
# leave what exists after start-up (modules, definitions, the solver) out of full passes.
gc.set_threshold(50_000, 20, 10)
gc.freeze()
