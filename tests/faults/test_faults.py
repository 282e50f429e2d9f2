"""Fault injection on the real broker with two workers: nothing lost, nothing conflicting.

`make faults` runs all of them at full size (LEADSTAGE_FAULTS_SCALE=1); `make test` runs the
SIGKILL scenario at a fifth of the size (the others are marked full_faults).
Each scenario prints the verifier's reconciliation figures.
"""

from __future__ import annotations

import shutil
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from tests.faults.verifier import verify
from tests.faults.workload import workload
from tests.integration.worker_harness import Worker, produce_raw, worker_env

COMPILED = compile_definitions(load_file("definitions/lead-stages.yaml"))


class Cluster:
    def __init__(self, bootstrap: str, name: str, tmp_path, base_port: int) -> None:
        self.bootstrap, self.name = bootstrap, name
        self.env = worker_env(bootstrap, name)
        self.tmp, self.base_port = tmp_path, base_port
        self.workers: list[Worker] = []
        #: give each worker LEADSTAGE_INSTANCE_ID "worker-<i>" (Kafka static membership)
        self.static = False

    def worker(self, i: int) -> Worker:
        env = {**self.env, "LEADSTAGE_INSTANCE_ID": f"worker-{i}"} if self.static else self.env
        w = Worker(env, self.tmp / f"data-{i}", self.base_port + i, self.tmp / f"w{i}.log")
        self.workers.append(w)
        return w

    def two_workers(self) -> tuple[Worker, Worker]:
        a, b = self.worker(1).start(), self.worker(2).start()
        a.wait_ready()
        b.wait_ready()
        return a, b

    def topics(self) -> dict[str, str]:
        return {"activity": f"{self.name}-activity", "changes": f"{self.name}-changes",
                "dlq": f"{self.name}-dlq"}

    def produce(self, records: list[tuple[bytes, bytes]]) -> None:
        produce_raw(self.bootstrap, self.topics()["activity"], records)

    def wait_caught_up(self, timeout_s: float = 240) -> None:
        """Until the group has committed every input offset and outputs stopped growing."""
        topic = self.topics()["activity"]
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                end = consumer.end_offsets(tps)
                group = self.env["LEADSTAGE_APP_ID"]
                try:
                    committed = admin.list_group_offsets({group: None}).get(group, {})
                except KafkaError:  # e.g. the coordinator moving after a broker restart
                    time.sleep(1)
                    continue
                if all(committed.get(tp) and committed[tp].offset >= end[tp] for tp in tps):
                    time.sleep(3)  # let the last outboxes and clears go out
                    return
                time.sleep(1)
            raise AssertionError("the workers did not catch up:\n" + "\n".join(
                w.tail(15) for w in self.workers))
        finally:
            consumer.close()
            admin.close()

    def check(self) -> None:
        report = verify(self.bootstrap, self.topics(), COMPILED, int(time.time() * 1000))
        print(f"\n[reconciliation {self.name}] {report.summary()}")
        assert not report.wrong_stages, report.wrong_stages[:5]
        assert not report.gaps, report.gaps[:5]
        assert not report.conflicts, report.conflicts[:2]
        assert report.ok, report.summary()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


@pytest.fixture
def cluster(kafka_bootstrap, unique_name, tmp_path, request):
    c = Cluster(kafka_bootstrap, unique_name("faults"), tmp_path, 16200 + 10 * (
        hash(request.node.name) % 20))
    yield c
    c.stop()


@pytest.mark.parametrize("membership", [
    "dynamic",
    # the killed worker comes back under its id and takes its partitions back at once, with
    # no rebalance, while the other keeps its own
    pytest.param("static", marks=pytest.mark.full_faults),
])
def test_sigkill_one_of_two_workers_twice(cluster, scale, membership):
    cluster.static = membership == "static"
    # at full size: 10,000 random-byte and malformed records among the good ones
    records = workload(int(20_000 * scale), int(2_000 * scale), int(10_000 * scale))
    a, _ = cluster.two_workers()
    quarter = len(records) // 4
    for i in range(4):
        cluster.produce(records[i * quarter:(i + 1) * quarter if i < 3 else len(records)])
        if i < 2:
            time.sleep(1.5)
            a.kill()  # SIGKILL while events stream in
            if i == 1:  # the second time its disk is lost too: state comes from the changelog
                shutil.rmtree(a.data_dir, ignore_errors=True)
            a.start()
    a.wait_ready()
    cluster.wait_caught_up()
    cluster.check()


@pytest.mark.full_faults
def test_a_worker_joins_and_another_leaves(cluster, scale):
    records = workload(int(15_000 * scale), int(1_500 * scale), int(1_000 * scale), seed=8)
    third = len(records) // 3
    a = cluster.worker(1).start()
    a.wait_ready()
    cluster.produce(records[:third])
    b = cluster.worker(2).start()  # joins: partitions move to it mid-stream
    cluster.produce(records[third:2 * third])
    b.wait_ready()
    a.stop()  # leaves: everything moves to b
    cluster.produce(records[2 * third:])
    cluster.wait_caught_up()
    cluster.check()


@pytest.mark.full_faults
def test_the_broker_restarts_mid_stream(cluster, scale):
    from streams.tools import broker

    cfg = broker.BrokerConfig.from_env()
    assert broker.running_pid(cfg), "this scenario restarts the local broker started by the tests"
    records = workload(int(15_000 * scale), int(1_500 * scale), int(1_000 * scale), seed=13)
    half = len(records) // 2
    a, b = cluster.two_workers()
    cluster.produce(records[:half])
    time.sleep(1)
    broker.stop(cfg)
    time.sleep(5)
    broker.start(cfg)
    for w in (a, b):  # a worker that could not write exits (70) rather than ack: supervise it
        if w.proc is not None and w.proc.poll() is not None:
            print(f"\nworker :{w.port} exited {w.proc.returncode} in the outage; restarted")
            w.start()
    cluster.produce(records[half:])
    for w in (a, b):
        if w.proc is not None and w.proc.poll() is not None:
            w.start()
    cluster.wait_caught_up()
    cluster.check()


@pytest.mark.full_faults
def test_a_worker_paused_past_its_session_fences_itself(cluster, scale):
    import signal

    from streams.worker.pause_fence import EXIT_PAUSED

    records = workload(int(15_000 * scale), int(1_500 * scale), int(1_000 * scale), seed=21)
    third = len(records) // 3
    a, _ = cluster.two_workers()
    cluster.produce(records[:third])
    time.sleep(1)
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)  # frozen past the 10 s session: b takes everything
    cluster.produce(records[third:2 * third])
    time.sleep(16)
    a.proc.send_signal(signal.SIGCONT)
    assert a.proc.wait(timeout=30) == EXIT_PAUSED, a.tail()  # it must not publish as a zombie
    cluster.produce(records[2 * third:])
    a.start()  # a supervisor restarts it; it rejoins as a fresh member
    cluster.wait_caught_up()
    cluster.check()


@pytest.mark.full_faults
def test_workers_restore_every_lead_from_a_compacted_changelog(cluster, scale):
    from tests.integration.kafka_helpers import create_topics, read_to_end

    # The changelog made as an operator could: segments rolled every 100 ms and cleaned as soon
    # as 1% is superseded, so the broker compacts it within the test (the worker's own 64 MiB
    # segments do the same at scale; bench/README.md, "The changelog's segments").
    changelog = f"{cluster.env['LEADSTAGE_APP_ID']}-leads-changelog"
    create_topics(cluster.bootstrap, [changelog], int(cluster.env["LEADSTAGE_PARTITIONS"]),
                  {"cleanup.policy": "compact", "segment.ms": "100",
                   "min.cleanable.dirty.ratio": "0.01"})
    records = workload(int(15_000 * scale), int(1_500 * scale), int(1_000 * scale), seed=34)
    quarter = len(records) // 4
    a, b = cluster.two_workers()
    for i in range(3):  # each wave writes most leads' states again, superseding the last
        cluster.produce(records[i * quarter:(i + 1) * quarter])
        time.sleep(2)
    cluster.wait_caught_up()
    written = sum(p for p in end_offsets(cluster.bootstrap, changelog))
    deadline = time.monotonic() + 120  # the broker's cleaner looks every 15 s
    while (left := len(read_to_end(cluster.bootstrap, changelog))) > 0.8 * written:
        assert time.monotonic() < deadline, f"not compacted: {left} of {written} records left"
        time.sleep(5)
    print(f"\n[compacted] {left} of {written} changelog records left")
    for w in (a, b):  # both lose their disks: every lead comes from the compacted changelog
        w.kill()
        shutil.rmtree(w.data_dir, ignore_errors=True)
    for w in (a, b):
        w.start()
    a.wait_ready()
    b.wait_ready()
    # the last wave moves leads on from their restored states: a state lost or stale would
    # number its changes again from the start (a conflict) or give a wrong stage
    cluster.produce(records[3 * quarter:])
    cluster.wait_caught_up()
    cluster.check()


def end_offsets(bootstrap: str, topic: str) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return list(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


@pytest.fixture
def three_brokers(tmp_path):
    """A cluster of three brokers of its own (node 1 also the controller), started and stopped
    as a user would, `leadstage broker start/stop --nodes 3` (by their pids)."""
    import os
    import subprocess

    from streams.tools import broker
    from tests.integration.worker_harness import LEADSTAGE

    env = {**os.environ, "LEADSTAGE_BROKER_DIR": str(tmp_path / "kafka"),
           "LEADSTAGE_BROKER_PORT": "19400"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LEADSTAGE, "broker", *args, "--nodes", "3"], env=env,
                              capture_output=True, text=True, timeout=180)

    nodes = broker.cluster_configs(tmp_path / "kafka", port=19400, size=3)
    try:
        started = cli("start")
        assert started.returncode == 0, started.stderr
        bootstrap = started.stdout.strip().splitlines()[-1]
        assert bootstrap == "127.0.0.1:19400,127.0.0.1:19402,127.0.0.1:19404"
        status = cli("status")
        assert status.returncode == 0 and status.stdout.count("running (pid") == 3, status.stdout
        again = cli("start")  # finds it running: starts nothing, prints the same address
        assert again.returncode == 0 and "already running" in again.stderr
        assert again.stdout.strip().splitlines()[-1] == bootstrap
        yield bootstrap, nodes
    finally:
        assert cli("stop").returncode == 0
        assert all(broker.running_pid(node) is None for node in nodes)


@pytest.mark.full_faults
def test_a_broker_dies_and_three_replicas_lose_nothing(three_brokers, unique_name, tmp_path,
                                                       scale):
    import os
    import signal

    from kafka.admin import ConfigResource, ConfigResourceType

    from streams.tools import broker

    bootstrap, nodes = three_brokers
    cluster = Cluster(bootstrap, unique_name("replicas"), tmp_path, 16400)
    cluster.env.update(LEADSTAGE_REPLICATION_FACTOR="3", LEADSTAGE_MIN_INSYNC_REPLICAS="2")
    records = workload(int(15_000 * scale), int(1_500 * scale), int(1_000 * scale), seed=55)
    half = len(records) // 2
    try:
        a, b = cluster.two_workers()
        # every topic the workers made: three replicas of each partition, two in sync to write
        app = cluster.env["LEADSTAGE_APP_ID"]
        made = [cluster.env[f"LEADSTAGE_TOPIC_{kind}"]
                for kind in ("ACTIVITY", "STAGE_CHANGES", "STAGES", "DLQ")] + [
            f"{app}-leads-changelog", f"{app}-__assignor-__leader"]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            for topic in admin.describe_topics(made):
                assert {len(p["replica_nodes"]) for p in topic["partitions"]} == {3}, topic
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t, ["min.insync.replicas"])
                 for t in made], config_filter="all")["topic"]
            assert {configs[t]["min.insync.replicas"]["value"] for t in made} == {"2"}
        finally:
            admin.close()

        cluster.produce(records[:half])
        time.sleep(1)
        victim = broker.running_pid(nodes[2])
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # a broker lost mid-stream, with its leaderships
        started = time.monotonic()
        cluster.produce(records[half:])
        cluster.wait_caught_up()
        print(f"\n[one of three brokers killed] caught up {time.monotonic() - started:.1f} s "
              "after the kill")
        for w in (a, b):  # two replicas in sync still take every write: no worker gives up
            assert w.proc is not None and w.proc.poll() is None, w.tail(30)
        cluster.check()
    finally:
        cluster.stop()
