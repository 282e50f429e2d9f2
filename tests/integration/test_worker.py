"""The worker on the real broker: DESIGN §5 rule by rule, lookups, metrics, a SIGKILL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from datetime import datetime
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.core.calendar import MS_PER_DAY, add_months, format_date, format_timestamp
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.lead_state import LeadState
from streams.core.stage_machine import StageMachine
from tests.integration.kafka_helpers import read_topic
from tests.integration.worker_harness import (
    LEADSTAGE,
    activity,
    by_lead,
    changes,
    produce_raw,
)

HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def produce_jsonl(bootstrap: str, topic: str, path: Path, events: list[dict]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = subprocess.run([LEADSTAGE, "produce", "--file", str(path), "--topic", topic],
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_events_move_leads_as_the_design_says(kafka_bootstrap, worker_factory, tmp_path):
    worker = worker_factory(16081).start()
    worker.wait_ready()
    name = worker_factory.name
    t = now_ms() - HOUR
    iso = format_timestamp
    soon, later = format_date(t // MS_PER_DAY + 60), format_date(t // MS_PER_DAY + 900)
    today = now_ms() // MS_PER_DAY
    h_decides = add_months((t - 2 * MS_PER_DAY) // MS_PER_DAY, 6) + 1
    h_hot_day = next(d for d in range(today - 2, today + 1) if add_months(d, 6) >= h_decides)
    produce_jsonl(kafka_bootstrap, f"{name}-activity", tmp_path / "events.jsonl", [
        {"event_id": "a1", "lead_id": "A", "occurred_at": iso(t), "activity": "CONTACTED"},
        {"event_id": "a2", "lead_id": "A", "occurred_at": iso(t + 1), "activity": "PRICING_VIEWED"},
        {"event_id": "a2", "lead_id": "A", "occurred_at": iso(t + 1), "activity": "PRICING_VIEWED"},
        {"event_id": "a3", "lead_id": "A", "occurred_at": iso(t + 2),
         "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": soon},
        # an older timeline arriving after a newer one changes nothing
        {"event_id": "a4", "lead_id": "A", "occurred_at": iso(t - 5 * HOUR),
         "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": later},
        {"event_id": "a5", "lead_id": "A", "occurred_at": iso(t + 3), "activity": "STAGE_ASSESSED",
         "team": "MARKETING", "assessed_stage": "hot"},
        {"event_id": "b1", "lead_id": "B", "occurred_at": iso(t), "activity": "CONTACTED"},
        {"event_id": "b2", "lead_id": "B", "occurred_at": iso(t + 1),
         "activity": "ERASURE_REQUESTED"},
        {"event_id": "c1", "lead_id": "C", "occurred_at": iso(t), "activity": "PAGE_VIEWED"},
        # P's decision date passed yesterday: hot at the time of its events, cold by time since
        {"event_id": "p1", "lead_id": "P", "occurred_at": iso(t - 3 * MS_PER_DAY),
         "activity": "CONTACTED"},
        {"event_id": "p2", "lead_id": "P", "occurred_at": iso(t - 3 * MS_PER_DAY),
         "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": format_date(today - 2)},
        # H's decision date was a day beyond 6 months two days ago: hot by time alone since
        {"event_id": "h1", "lead_id": "H", "occurred_at": iso(t - 2 * MS_PER_DAY),
         "activity": "CONTACTED"},
        {"event_id": "h2", "lead_id": "H", "occurred_at": iso(t - 2 * MS_PER_DAY),
         "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": format_date(h_decides)},
    ])
    # poison between good events: garbage, an unknown fingerprint, a key that is not lead_id
    produce_raw(kafka_bootstrap, f"{name}-activity", [
        (b"A", b"not avro at all"), (b"A", b"\xc3\x01" + bytes(12)),
        (b"X", activity("d1", "D", t, "CONTACTED")),
        (b"D", activity("d2", "D", t, "CONTACTED")),
    ])

    records = changes(kafka_bootstrap, f"{name}-changes", want=11)
    leads = by_lead(records)
    assert len(records) == 11
    assert [(c["stage"], c["cause"]) for c in leads["P"]] == [
        ("cold", "EVENT"), ("hot", "EVENT"), ("cold", "TIME")]
    assert leads["P"][2]["changed_at"] == (today - 1) * MS_PER_DAY  # the day after the date
    assert [(c["stage"], c["cause"]) for c in leads["H"]] == [("cold", "EVENT"), ("hot", "TIME")]
    assert leads["H"][1]["changed_at"] == h_hot_day * MS_PER_DAY
    assert [(c["sequence"], c["previous_stage"], c["stage"]) for c in leads["A"]] == [
        (1, None, "cold"), (2, "cold", "warm"), (3, "warm", "hot")]
    assert [c["event_id"] for c in leads["A"]] == ["A:1", "A:2", "A:3"]
    assert leads["A"][2]["cause_event_id"] == "a3" and leads["A"][2]["cause"] == "EVENT"
    assert leads["A"][2]["facts"]["decision_date"] == soon
    assert [(c["sequence"], c["stage"]) for c in leads["B"]] == [(1, "cold"), (2, None)]
    assert "C" not in leads  # never contacted: outside the population
    assert [(c["sequence"], c["stage"]) for c in leads["D"]] == [(1, "cold")]

    stages = {r.key: r.value for r in read_topic(kafka_bootstrap, f"{name}-stages", want=3)}
    assert stages[b"B"] is None  # tombstone for the erased lead
    dead = read_topic(kafka_bootstrap, f"{name}-dlq", want=3)
    assert sorted(dict(r.headers)["leadstage.error.reason"] for r in dead) == [
        b"key_mismatch", b"undecodable", b"unknown_fingerprint"]

    status, doc = worker.get("/leads/A")
    assert status == 200 and doc["stage"] == "hot" and doc["sequence"] == 3
    assert doc["facts"]["decision_date"] == soon and "deciding_soon" in doc["reason"]
    assert [c["sequence"] for c in doc["recent_changes"]] == [1, 2, 3]
    assert worker.get("/leads/B")[0] == 404 and worker.get("/leads/nobody")[0] == 404
    shown = subprocess.run([LEADSTAGE, "lead", "A", "--url", worker.url("")],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0 and "A: hot since" in shown.stdout
    assert "decision_date = " + soon in shown.stdout and "EVENT" in shown.stdout
    unknown = subprocess.run([LEADSTAGE, "lead", "B", "--url", worker.url("")],
                             capture_output=True, text=True)
    assert unknown.returncode == 1 and "No lead 'B'" in unknown.stderr
    nobody = subprocess.run([LEADSTAGE, "lead", "A", "--url", "http://127.0.0.1:9"],
                            capture_output=True, text=True)
    assert nobody.returncode == 2 and "No worker answers" in nobody.stderr

    status, text = worker.get("/metrics")
    assert status == 200
    for line in ['leadstage_leads{stage="hot"} 2.0', 'leadstage_leads{stage="cold"} 2.0',
                 'leadstage_dead_letters_total{reason="undecodable"} 1.0',
                 'leadstage_stage_changes_total{cause="EVENT",from_stage="warm",'
                 'to_stage="hot"} 1.0',
                 'leadstage_events_total{activity="PRICING_VIEWED",outcome="duplicate",'
                 'source="OTHER"} 1.0',
                 'leadstage_assessments_total{assessed_stage="hot",objective_stage="hot",'
                 'team="MARKETING",verdict="agree"} 1.0',
                 'leadstage_definitions_info{version="1"} 1.0']:
        assert line in text, line
    for path in ("/table/leads/", "/router/", "/graph/", "/"):  # "/" told scanners "OK"
        assert worker.get(path)[0] == 404, path


def test_time_moves_stages_with_cause_time(kafka_bootstrap, worker_factory, tmp_path):
    definitions = tmp_path / "newcomers.yaml"
    definitions.write_text("""\
version: 3
agreed_by: {marketing: M, sales: S}
facts:
  contacts: {count: [CONTACTED]}
  first_contact: {first: CONTACTED}
  interest: {count: [DEMO_REQUESTED], within: 90 days}
population: contacts >= 1
stages:
  - name: idle
    meaning: Contacted us less than an hour ago; no demo asked in 90 days.
    when: interest == 0 and first_contact > now - 1 hour
  - name: settled
    meaning: Known for an hour or more; no demo asked in 90 days.
    when: interest == 0 and first_contact <= now - 1 hour
  - name: keen
    meaning: Asked for a demo in the last 90 days.
    when: interest >= 1
""")
    worker = worker_factory(16082, LEADSTAGE_DEFINITIONS=str(definitions),
                            LEADSTAGE_API_TOKEN="s3cret-token").start()
    worker.wait_ready()
    name = worker_factory.name
    t = now_ms()
    produce_raw(kafka_bootstrap, f"{name}-activity", [
        # becomes settled 5 s from now, by time alone
        (b"N", activity("n1", "N", t - HOUR + 5000, "CONTACTED")),
        # keen now, settled again when its demo leaves the 90-day window in 6 s
        (b"K", activity("k1", "K", t - 2 * HOUR, "CONTACTED")),
        (b"K", activity("k2", "K", t - 90 * MS_PER_DAY + 6000, "DEMO_REQUESTED")),
    ])
    records = by_lead(changes(kafka_bootstrap, f"{name}-changes", want=5, timeout_s=60))
    assert sum(map(len, records.values())) == 5
    assert [(c["stage"], c["cause"]) for c in records["N"]] == [("idle", "EVENT"),
                                                                ("settled", "TIME")]
    assert records["N"][1]["changed_at"] == t + 5000  # the exact instant, not the sweep's
    # K's contact is evaluated at its own time (2 h ago), when K was known for under an hour
    assert [(c["stage"], c["cause"]) for c in records["K"]] == [
        ("idle", "EVENT"), ("keen", "EVENT"), ("settled", "TIME")]
    assert records["K"][2]["changed_at"] == t + 6000
    assert all(c["definitions_version"] == 3 for c in records["N"] + records["K"])
    assert worker.get("/leads/N")[0] == 401
    assert worker.get("/leads/N", {"Authorization": "Bearer wrong"})[0] == 401
    status, doc = worker.get("/leads/N", {"Authorization": "Bearer s3cret-token"})
    assert status == 200 and doc["stage"] == "settled"
    assert "s3cret-token" not in worker.log_path.read_text()


def test_definitions_that_fail_the_checker_stop_the_worker(kafka_bootstrap, worker_factory):
    worker = worker_factory(16083, LEADSTAGE_DEFINITIONS=str(
        Path("definitions/examples/variant-a-literal.yaml").resolve())).start()
    assert worker.proc is not None
    assert worker.proc.wait(timeout=60) == 2
    log = worker.tail()
    assert "refusing to start" in log and "gap" in log and "overlap" in log


def test_a_worker_starts_and_exits_without_waiting_out_fixed_seconds(worker_factory):
    # Faust's table manager sleeps a second before it registers the tables, mode's Worker a
    # second once every service has stopped (adapters/faust_lifecycle.py); each gap is read
    # from the worker's own log
    worker = worker_factory(16085).start()
    worker.wait_ready()
    worker.stop()
    assert worker.proc is not None and worker.proc.returncode == 0, worker.tail()
    tables, recovery = "TableManager]: Starting", "[^---Recovery]: Starting"
    gathering, closing = "Gathering all futures", "Closing event loop"
    logged: dict[str, datetime] = {}
    for line in worker.log_path.read_text().splitlines():
        for mark in (tables, recovery, gathering, closing):
            if mark in line and mark not in logged:  # "[2026-12-06 16:21:00,923] [pid] ..."
                logged[mark] = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
    assert len(logged) == 4, worker.tail()
    assert (logged[recovery] - logged[tables]).total_seconds() < 0.5, worker.tail()
    assert (logged[closing] - logged[gathering]).total_seconds() < 0.5, worker.tail()


def offline_stages(events: list[tuple[str, dict]]) -> dict[str, list[tuple]]:
    """What the pure core says each lead's changes are, from the input in topic order."""
    machine = StageMachine(compile_definitions(load_file("definitions/lead-stages.yaml")))
    states: dict[str, LeadState] = {}
    for _, event in events:
        state = states.setdefault(event["lead_id"], LeadState(event["lead_id"]))
        machine.apply(state, event, [])
    return {lead: [(c["sequence"], c["stage"]) for c in s.recent_changes]
            for lead, s in states.items()}


def changelog_segment_bytes(bootstrap: str, topic: str) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return found["topic"][topic]["segment.bytes"]["value"]


def test_sigkill_loses_no_stage_change(kafka_bootstrap, worker_factory):
    # The changelog topic Faust creates carries the segment size, Kafka's smallest (which
    # Kafka 4 must accept, as the settings' lower bound).
    worker = worker_factory(16084, LEADSTAGE_CHANGELOG_SEGMENT_BYTES="1048576").start()
    worker.wait_ready()
    name = worker_factory.name
    assert changelog_segment_bytes(kafka_bootstrap, f"{name}-app-leads-changelog") == "1048576"
    rng = random.Random(7)
    t = now_ms() - 10 * HOUR
    kinds = ["CONTACTED", "PAGE_VIEWED", "PRICING_VIEWED", "DEMO_REQUESTED",
             "DECISION_TIMELINE_PROVIDED"]
    events = []
    for i in range(6000):
        lead = f"L{rng.randrange(400)}"
        kind = rng.choice(kinds)
        extra = {"decision_by": t // MS_PER_DAY + rng.choice([30, 400])} \
            if kind == "DECISION_TIMELINE_PROVIDED" else {}
        events.append((lead, {"event_id": f"e{i}", "lead_id": lead, "occurred_at": t + i,
                              "activity": kind, "source": "WEB", **extra}))
    encoded = [(lead.encode(), activity(e["event_id"], lead, e["occurred_at"], e["activity"],
                                        decision_by=e.get("decision_by")))
               for lead, e in events]
    produce_raw(kafka_bootstrap, f"{name}-activity", encoded[:3000])
    read_topic(kafka_bootstrap, f"{name}-changes", want=200, timeout_s=60)
    worker.kill()  # SIGKILL in the middle of the stream
    produce_raw(kafka_bootstrap, f"{name}-activity", encoded[3000:])
    # Restarted with another segment size, as after an upgrade: Faust leaves the topic as it
    # is, and the worker says so (with the command that changes it) and runs on.
    worker.env["LEADSTAGE_CHANGELOG_SEGMENT_BYTES"] = str(64 * 2**20)
    worker.start()
    worker.wait_ready()
    assert f"changelog topic {name}-app-leads-changelog has segment.bytes=1048576, not " \
           "LEADSTAGE_CHANGELOG_SEGMENT_BYTES=67108864" in worker.log_path.read_text()

    expected = offline_stages(events)
    want = sum(len(v) for v in expected.values())
    deadline = time.monotonic() + 120
    while True:
        published = changes(kafka_bootstrap, f"{name}-changes", want=10**9, timeout_s=3)
        seen = {(c["lead_id"], c["sequence"]) for c in published}
        if len(seen) >= want or time.monotonic() > deadline:
            break
    first: dict[tuple[str, int], dict] = {}
    for c in published:
        key = (c["lead_id"], c["sequence"])
        assert first.setdefault(key, c) == c, f"conflicting re-emission of {key}"
    for changes_of in by_lead(list(first.values())).values():
        assert sorted(c["sequence"] for c in changes_of) == list(range(1, len(changes_of) + 1))
    final = {lead: max(cs, key=lambda c: c["sequence"])["stage"]
             for lead, cs in by_lead(published).items()}
    assert final == {lead: path[-1][1] for lead, path in expected.items() if path}
    _, text = worker.get("/metrics")
    gauge = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("leadstage_leads{"))
    assert gauge == sum(1 for stage in final.values() if stage is not None)
