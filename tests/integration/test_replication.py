"""Replication the cluster cannot give (LEADSTAGE_REPLICATION_FACTOR above its brokers) against
the real single-node broker: every tool that creates topics refuses at once, in words that name
the setting and the brokers, instead of a traceback or a worker that never becomes ready. The
replicated case itself, on three brokers with one of them killed, is in the fault suite."""

from __future__ import annotations

import os
import subprocess
import time

from kafka import KafkaAdminClient

from tests.integration.worker_harness import LEADSTAGE, worker_env


def run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([LEADSTAGE, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)
    return done, time.monotonic() - started


def listed(bootstrap: str, prefix: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return [t for t in admin.list_topics() if t.startswith(prefix)]
    finally:
        admin.close()


WORDS = ("cannot create the topics with LEADSTAGE_REPLICATION_FACTOR=2: the cluster at "
         "{bootstrap} has 1 broker(s) (INVALID_REPLICATION_FACTOR")


def test_topics_refuses_more_replicas_than_brokers_and_creates_none(kafka_bootstrap,
                                                                    unique_name):
    name = unique_name("replicas")
    env = worker_env(kafka_bootstrap, name, LEADSTAGE_REPLICATION_FACTOR="2",
                     LEADSTAGE_MIN_INSYNC_REPLICAS="2")
    done, took = run(["topics"], env)
    assert done.returncode == 2 and took < 30, done.stderr
    assert WORDS.format(bootstrap=kafka_bootstrap) in done.stderr
    assert "Traceback" not in done.stderr
    assert listed(kafka_bootstrap, name) == []
    # the same settings with as many replicas as brokers create them all
    done, _ = run(["topics"], {**env, "LEADSTAGE_REPLICATION_FACTOR": "1",
                               "LEADSTAGE_MIN_INSYNC_REPLICAS": "1"})
    assert done.returncode == 0, done.stderr
    assert len(listed(kafka_bootstrap, name)) == 6


def test_the_worker_and_the_forwarder_refuse_it_at_start(kafka_bootstrap, unique_name, tmp_path):
    name = unique_name("replicas")
    env = worker_env(kafka_bootstrap, name, LEADSTAGE_REPLICATION_FACTOR="2",
                     LEADSTAGE_DATA_DIR=str(tmp_path / "data"), LEADSTAGE_WEB_PORT="16595")
    worker, took = run(["worker", "-l", "info"], env)
    assert worker.returncode == 2 and took < 30, worker.stderr
    assert "leadstage worker: refusing to start.\n" in worker.stderr
    assert WORDS.format(bootstrap=kafka_bootstrap) in worker.stderr
    assert "Traceback" not in worker.stderr

    forward, took = run(["forward", "--url", "http://127.0.0.1:9/x", "--dlq", f"{name}-fdlq"],
                        {**env, "LEADSTAGE_FORWARD_SECRET": "s", "LEADSTAGE_FORWARD_PORT": "16596"})
    assert forward.returncode == 2 and took < 30, forward.stderr
    assert WORDS.format(bootstrap=kafka_bootstrap) in forward.stderr
    assert "Traceback" not in forward.stderr
    assert listed(kafka_bootstrap, name) == []


def test_topics_made_with_fewer_replicas_are_reported_not_altered(kafka_bootstrap, unique_name):
    # as an upgrade finds them: made before LEADSTAGE_REPLICATION_FACTOR was set (the broker's
    # default, 1 here); the worker and `leadstage topics` start, and say what to do
    name = unique_name("replicas")
    env = worker_env(kafka_bootstrap, name)
    assert run(["topics"], env)[0].returncode == 0
    done, _ = run(["topics"], {**env, "LEADSTAGE_REPLICATION_FACTOR": "2",
                               "LEADSTAGE_MIN_INSYNC_REPLICAS": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all topics exist"
    app = env["LEADSTAGE_APP_ID"]
    topics = [env[f"LEADSTAGE_TOPIC_{kind}"] for kind in
              ("ACTIVITY", "STAGE_CHANGES", "STAGES", "DLQ")] + [
        f"{app}-leads-changelog", f"{app}-__assignor-__leader"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    for topic in topics:
        assert (f"warning: topic {topic} has 1 replica(s) per partition at least, not "
                "LEADSTAGE_REPLICATION_FACTOR=2: a broker lost can lose its data.") in \
            done.stderr
        assert (f"warning: topic {topic} has min.insync.replicas=1, not "
                f"LEADSTAGE_MIN_INSYNC_REPLICAS=2: kafka-configs.sh --bootstrap-server "
                f"{kafka_bootstrap} --alter --entity-type topics --entity-name {topic} "
                "--add-config min.insync.replicas=2") in warnings
    assert len(warnings) == 2 * len(topics)
    # as many replicas as asked for: no warning
    done, _ = run(["topics"], {**env, "LEADSTAGE_REPLICATION_FACTOR": "1"})
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
