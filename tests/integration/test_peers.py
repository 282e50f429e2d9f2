"""The benchmark's peers do leadstage's job: on a small generated history, the final stage of
every lead from the Quix Streams peer and from the Kafka Streams peer equals the stage
leadstage's core gives it at the lead's latest event (the evaluation time of an event-caused
change; the worker's time-driven sweeps are what the peers leave out)."""

from __future__ import annotations

import json
import sys
import time
import uuid

import pytest

from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.resources import default_definitions
from streams.core.whatif import replay
from streams.tools.generator import Generator, as_json
from streams.wire.avro import avro_codec
from streams.wire.json_lines import parse_line
from tests.integration.kafka_helpers import create_topics, read_to_end
from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench" / "peers"))
import harness


@pytest.fixture(scope="module")
def workload(kafka_bootstrap):
    compiled = compile_definitions(load_file(default_definitions()))
    now = int(time.time() * 1000)
    events = [parse_line(json.dumps(as_json(e))) for e in sorted(
        Generator(compiled, seed=11).history(300, 120, now), key=lambda e: e["occurred_at"])]
    topic = f"peers-in-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], partitions=4)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    codec = avro_codec()
    for event in events:
        producer.send(topic, key=event["lead_id"].encode(),
                      value=codec.encode("LeadActivity", event))
    producer.flush()
    producer.close()
    histories, _, _ = replay(events)
    expected = {lead: compiled.evaluate(h, h.max_occurred_at)[0]
                for lead, h in histories.items()}
    return topic, len(events), expected


def final_stages(bootstrap: str, topic: str) -> dict[str, str | None]:
    final: dict[str, str | None] = {}
    for record in read_to_end(bootstrap, topic):
        change = json.loads(record.value)
        final[change["lead_id"]] = change["stage"]
    return final


@pytest.mark.peers
@pytest.mark.parametrize("peer", ["quix", "kafka_streams"])
def test_the_peer_ends_every_lead_in_leadstages_stage(kafka_bootstrap, unique_name, workload,
                                                      peer):
    topic, count, expected = workload
    out = unique_name(f"{peer}-out")
    create_topics(kafka_bootstrap, [out], partitions=4)
    run = harness.run_quix if peer == "quix" else harness.run_kafka_streams
    result = run(kafka_bootstrap, topic, out, count, timeout_s=600)
    assert result.events == count
    got = final_stages(kafka_bootstrap, out)
    staged = {lead: stage for lead, stage in expected.items() if stage is not None}
    assert len(staged) > 100 and {"cold", "warm", "hot"} <= set(staged.values())
    wrong = {lead: (got.get(lead), stage) for lead, stage in staged.items()
             if got.get(lead) != stage}
    assert not wrong, f"{len(wrong)} leads differ (peer, leadstage): {list(wrong.items())[:5]}"
    assert not {lead for lead, stage in got.items() if stage and lead not in staged}
