"""The secured local broker (SASL_SSL, SCRAM-SHA-512, TLS from its own CA, ACLs): each principal
does what its role needs and is refused the rest, quickly and in words; the worker runs end to
end over it; no password ever appears in any output."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from streams.adapters.reader import StageChange, StageChangeReader
from streams.adapters.settings import Settings
from streams.tools import broker as local_broker
from streams.tools.broker_security import PRINCIPALS, read_client_file
from streams.tools.processes import stop_process, wait_healthy

LEADSTAGE = str(Path(sys.executable).parent / "leadstage")
TOPICS = ["lead-activity", "lead-stage-changes", "lead-stages", "lead-activity-dlq",
          "lead-stage-changes-forward-dlq"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure-broker")
    cfg = local_broker.BrokerConfig(port=19592, controller_port=19593, directory=folder,
                                    secure=True)
    said: list[str] = []
    address, _ = local_broker.start(cfg, timeout_s=120, echo=said.append)
    env = {p: read_client_file(cfg.clients_dir / f"{p}.env") for p in ("admin", *PRINCIPALS)}
    admin = KafkaAdminClient(**kwargs(env["admin"]))
    admin.create_topics([NewTopic(t, 2, 1) for t in TOPICS])
    admin.close()
    producer = KafkaProducer(acks="all", **kwargs(env["admin"]))
    for topic in TOPICS:  # one record to read on partition 0 of each
        producer.send(topic, key=b"k", value=b"seed", partition=0)
    producer.flush()
    producer.close()
    yield cfg, address, env, said
    local_broker.stop(cfg)


def kwargs(env: dict[str, str]) -> dict[str, object]:
    settings = Settings.from_env(env)
    return {"bootstrap_servers": settings.bootstrap_list,
            **settings.security.kafka_python_kwargs()}


def cli(args: list[str], env: dict[str, str], timeout: float = 60
        ) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([LEADSTAGE, *args], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=timeout)
    return result, time.monotonic() - started


def test_each_principal_gets_a_private_settings_file(secured):
    cfg, address, env, said = secured
    for principal in ("admin", *PRINCIPALS):
        path = cfg.clients_dir / f"{principal}.env"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert env[principal]["KAFKA_SASL_USERNAME"] == principal
        assert env[principal]["KAFKA_BOOTSTRAP_SERVERS"] == address
        assert env[principal]["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert len({e["KAFKA_SASL_PASSWORD"] for e in env.values()}) == len(env)
    assert not any(e["KAFKA_SASL_PASSWORD"] in line for e in env.values() for line in said)


@pytest.mark.parametrize(("principal", "topic", "allowed"), [
    ("producer-web", "lead-activity", True),
    ("producer-crm", "lead-activity", True),
    ("collector", "lead-activity", True),
    ("crm-sync", "lead-activity", False),
    ("leadstage-worker", "lead-activity", False),  # it reads its input, never writes it
    ("leadstage-worker", "lead-stage-changes", True),
    ("producer-web", "lead-stages", False),
    ("crm-sync", "lead-stage-changes-forward-dlq", True),
])
def test_who_may_write_where(secured, principal, topic, allowed):
    _, _, env, _ = secured
    producer = KafkaProducer(acks="all", max_block_ms=20_000, **kwargs(env[principal]))
    started = time.monotonic()
    try:
        producer.send(topic, key=b"k", value=b"v").get(timeout=25)
        wrote = True
    except KafkaError as exc:
        wrote = False
        assert "Authorization" in type(exc).__name__, exc
    finally:
        producer.close(timeout=5)
    assert wrote == allowed
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(("principal", "topic", "allowed"), [
    ("crm-sync", "lead-stage-changes", True),
    ("crm-sync", "lead-stages", True),
    ("leadstage-worker", "lead-activity", True),
    ("producer-web", "lead-stages", False),
    ("producer-crm", "lead-activity", False),
    ("collector", "lead-stage-changes", False),
])
def test_who_may_read_what(secured, principal, topic, allowed):
    _, _, env, _ = secured
    consumer = KafkaConsumer(enable_auto_commit=False, **kwargs(env[principal]))
    started = time.monotonic()
    read = False
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek(TopicPartition(topic, 0), 0)
        deadline = time.monotonic() + 8
        while not read and time.monotonic() < deadline:  # refused: nothing, or an error
            read = bool(consumer.poll(timeout_ms=1000))
    except KafkaError as exc:
        assert "Authorization" in type(exc).__name__, exc
    finally:
        consumer.close()
    assert read == allowed
    assert time.monotonic() - started < 30


def test_refusals_are_fast_and_say_what_is_wrong(secured, tmp_path):
    _, _, env, _ = secured
    events = tmp_path / "e.jsonl"
    events.write_text('{"event_id": "e1", "lead_id": "L-1", "occurred_at": '
                      '"2026-11-27T08:00:00Z", "source": "WEB", "activity": "CONTACTED"}\n')
    web = env["producer-web"]
    plaintext = {"KAFKA_BOOTSTRAP_SERVERS": web["KAFKA_BOOTSTRAP_SERVERS"],
                 "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    untrusted = {k: v for k, v in web.items() if k != "KAFKA_SSL_CAFILE"}
    cases = [
        ({**web, "KAFKA_SASL_PASSWORD": "not-the-password"},
         "authentication failed at 127.0.0.1:19592: user 'producer-web' with SCRAM-SHA-512"),
        (plaintext, "it expects TLS, and KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        (untrusted, "TLS: the certificate of 127.0.0.1:19592 is not trusted"),
        (env["crm-sync"], "not authorized: principal 'crm-sync' may not use topic "
                          "'lead-activity'"),
    ]
    for overrides, words in cases:
        result, took = cli(["produce", "--file", str(events)],
                           {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
                           | overrides)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert took < 30
        assert "Traceback" not in result.stderr
        assert not any(e["KAFKA_SASL_PASSWORD"] in result.stdout + result.stderr
                       for e in env.values())


def test_the_worker_runs_over_sasl_ssl_and_refuses_without_its_acls(secured, tmp_path):
    _, _, env, _ = secured
    wrong, took = cli(["worker", "-l", "info"], env["producer-web"] | {
        "LEADSTAGE_DATA_DIR": str(tmp_path / "refused"), "LEADSTAGE_WEB_PORT": "16591"})
    assert wrong.returncode == 2 and took < 30  # refused before Faust starts
    assert "not authorized: principal 'producer-web' may not create topic(s)" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([LEADSTAGE, "worker", "-l", "debug"], env={
            **os.environ, **env["leadstage-worker"], "LEADSTAGE_DATA_DIR": str(tmp_path / "d"),
            "LEADSTAGE_WEB_PORT": "16592"}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy("http://127.0.0.1:16592", worker, 90, log)
        events = tmp_path / "e.jsonl"
        events.write_text(
            '{"event_id": "s1", "lead_id": "S-1", "occurred_at": "2026-11-27T08:00:00Z", '
            '"source": "CRM", "activity": "CONTACTED"}\n'
            '{"event_id": "s2", "lead_id": "S-1", "occurred_at": "2026-11-27T08:01:00Z", '
            '"source": "CRM", "activity": "PRICING_VIEWED"}\n')
        sent, _ = cli(["produce", "--file", str(events)], env["producer-crm"])
        assert sent.returncode == 0, sent.stderr
        stages = []
        reader_settings = Settings.from_env(env["crm-sync"])
        with StageChangeReader("crm-sync-test", reader_settings) as reader:
            deadline = time.monotonic() + 60
            for item in reader:
                if isinstance(item, StageChange) and item.lead_id == "S-1":
                    stages.append(item.stage)
                if len(stages) == 2 or time.monotonic() > deadline:
                    break
        assert stages == ["cold", "warm"]
    finally:
        stop_process(worker)
    text = log.read_text(errors="replace")  # at DEBUG, with the clients' configs in it
    assert "sasl_plain_password" in text or "SASL" in text
    assert not any(e["KAFKA_SASL_PASSWORD"] in text for e in env.values())


def test_topics_and_the_forwarder_work_as_their_principals(secured, tmp_path):
    _, _, env, _ = secured
    refused, took = cli(["topics"], env["producer-web"])
    assert refused.returncode == 2 and took < 30
    assert "not authorized: principal 'producer-web' may not create topic(s)" in refused.stderr
    assert cli(["topics"], env["admin"])[0].returncode == 0

    # crm-sync forwards a change (and dead-letters the seed record, which is not one)
    from streams.wire.avro import avro_codec
    from tests.integration.webhook_receiver import Receiver

    producer = KafkaProducer(acks="all", **kwargs(env["leadstage-worker"]))
    producer.send("lead-stage-changes", key=b"F-1", value=avro_codec().encode(
        "LeadStageChanged", {"event_id": "F-1:1", "lead_id": "F-1", "sequence": 1,
                             "previous_stage": None, "stage": "cold",
                             "changed_at": 1_795_000_000_000, "cause": "EVENT",
                             "cause_event_id": "e", "definitions_version": 1, "reason": "r",
                             "facts": {}})).get(timeout=20)
    producer.close()

    with Receiver(b"fwd-secret", lambda change: (200, 0.0, {})) as receiver:
        log = tmp_path / "forward.log"
        with open(log, "wb") as out:
            forwarder = subprocess.Popen(
                [LEADSTAGE, "forward", "--url", receiver.url, "--group", "crm-sync-forward"],
                env={**os.environ, **env["crm-sync"], "LEADSTAGE_FORWARD_SECRET": "fwd-secret",
                     "LEADSTAGE_FORWARD_PORT": "16593"}, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "F-1" not in {
                    r.lead_id for r in receiver.accepted()}:
                time.sleep(0.5)
        finally:
            assert stop_process(forwarder) == 0, log.read_text()
        assert "F-1" in {r.lead_id for r in receiver.accepted()}
        assert all(r.signed for r in receiver.received)
        text = log.read_text()
        assert not any(e["KAFKA_SASL_PASSWORD"] in text for e in env.values())
