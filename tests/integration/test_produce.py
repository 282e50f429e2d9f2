"""`leadstage produce` and the producer SDK against the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.adapters.producer import LeadActivityProducer
from streams.adapters.settings import Settings
from streams.wire.validation import InvalidEvent
from tests.integration.kafka_helpers import create_topics, read_topic
from tests.paths import SCHEMA_DIR
from tests.unit.wire.avro_spec import read_with_avro_package

NOW = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 3600))


def line(i: int, **extra: object) -> str:
    event = {"event_id": f"e{i}", "lead_id": f"L{i % 3}", "occurred_at": NOW,
             "source": "WEB", "activity": "PRICING_VIEWED", **extra}
    return json.dumps(event)


def test_produce_sends_good_lines_and_reports_bad_ones(kafka_bootstrap, unique_name, tmp_path):
    topic = unique_name("activity")
    create_topics(kafka_bootstrap, [topic], partitions=4)
    lines = [
        line(1),
        "{this is not json",
        line(2, activity="DANCED"),
        line(3, activity="DECISION_TIMELINE_PROVIDED", decision_by="2027-03-01"),
        line(4, activity="DECISION_TIMELINE_PROVIDED"),  # no decision_by
        "",
        line(6, lead_id=""),
        line(7, occurred_at="1999-05-01T00:00:00+00:00"),
        line(8, amount=12.5, currency="EUR", activity="BUDGET_CONFIRMED"),
        line(9, amount=-1, activity="DEAL_WON"),
        "INVALID-UTF8",
        line(11, lead_id="jane%40example.com"),
    ]
    file = tmp_path / "events.jsonl"
    raw = ("\n".join(lines) + "\n").encode()
    # lead_id "L" + byte E9: Latin-1 for "é", not UTF-8
    file.write_bytes(raw.replace(b"INVALID-UTF8", line(10, lead_id="L-E9").encode()
                                 .replace(b"L-E9", b"L\xe9")))
    exe = Path(sys.executable).parent / "leadstage"
    result = subprocess.run([str(exe), "produce", "--file", str(file), "--topic", topic],
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    rejected = {int(msg.split(":")[1]) for msg in result.stderr.splitlines()
                if ": rejected: " in msg}
    assert rejected == {2, 3, 5, 7, 8, 10, 11, 12}
    assert f"{file}:3: rejected: unknown activity 'DANCED'" in result.stderr
    assert f"{file}:11: rejected: the line is not valid UTF-8" in result.stderr
    assert f"{file}:10: rejected: amount must be a finite number" in result.stderr
    assert "sent 3" in result.stderr and "rejected 8" in result.stderr

    records = read_topic(kafka_bootstrap, topic, want=4, timeout_s=5)  # exactly 3 arrive
    decoded = [read_with_avro_package(SCHEMA_DIR / "LeadActivity.avsc", r.value)
               for r in records]
    assert sorted(d["event_id"] for d in decoded) == ["e1", "e3", "e8"]
    assert all(r.key == d["lead_id"].encode() for r, d in zip(records, decoded, strict=True))
    e3 = next(d for d in decoded if d["event_id"] == "e3")
    assert e3["decision_by"].isoformat() == "2027-03-01"


def test_produce_exit_0_when_every_line_is_good(kafka_bootstrap, unique_name, tmp_path):
    topic = unique_name("activity")
    create_topics(kafka_bootstrap, [topic])
    file = tmp_path / "good.jsonl"
    file.write_text("\n".join(line(i) for i in range(50)) + "\n")
    exe = Path(sys.executable).parent / "leadstage"
    result = subprocess.run([str(exe), "produce", "--file", str(file), "--topic", topic],
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(read_topic(kafka_bootstrap, topic, want=50)) == 50


def test_sdk_send_many_reports_rejections_and_delivers_the_rest(kafka_bootstrap, unique_name):
    topic = unique_name("activity")
    create_topics(kafka_bootstrap, [topic], partitions=2)
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    events = [json.loads(line(i)) for i in range(10)]
    events[4]["lead_id"] = "someone@example.com"
    with LeadActivityProducer(settings, topic=topic) as producer:
        report = producer.send_many(events)
        try:
            producer.send({"event_id": "x", "lead_id": "L", "activity": "CONTACTED"})
            raise AssertionError("an event without occurred_at was accepted")
        except InvalidEvent as exc:
            assert "occurred_at" in str(exc)
    assert report.sent == 9
    assert [i for i, _ in report.failed] == [4] and "e-mail" in report.failed[0][1]
    records = read_topic(kafka_bootstrap, topic, want=9)
    by_key: dict[bytes, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in by_key.values())  # one lead, one partition


def test_produce_reads_standard_input_and_skips_an_overlong_line(kafka_bootstrap, unique_name):
    topic = unique_name("activity")
    create_topics(kafka_bootstrap, [topic], partitions=1)
    stdin = (line(1) + "\n" + "x" * 2_500_000 + "\n" + line(3) + "\n").encode()
    exe = Path(sys.executable).parent / "leadstage"
    result = subprocess.run([str(exe), "produce", "--file", "-", "--topic", topic], input=stdin,
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
                            capture_output=True, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "-:2: rejected: the line is longer than 1048576 bytes" in stderr
    assert "sent 2" in stderr and "rejected 1" in stderr
    records = read_topic(kafka_bootstrap, topic, want=3, timeout_s=5)
    assert len(records) == 2


def test_a_misspelt_security_protocol_is_refused_before_anything_is_sent(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(line(1) + "\n")
    exe = Path(sys.executable).parent / "leadstage"
    result = subprocess.run([str(exe), "produce", "--file", str(events)],
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                                 "KAFKA_SECURITY_PROTOCOL": "SASL-SSL"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "KAFKA_SECURITY_PROTOCOL must be one of" in result.stderr
    assert "'SASL-SSL'" in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "nan", "soon", "7200"])
def test_a_give_up_time_outside_1_to_3600_seconds_is_refused(tmp_path, value):
    events = tmp_path / "events.jsonl"
    events.write_text(line(1) + "\n")
    exe = Path(sys.executable).parent / "leadstage"
    result = subprocess.run([str(exe), "produce", "--file", str(events),
                             "--give-up-after", value],
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "--give-up-after" in result.stderr


def test_produce_fails_in_bounded_time_when_the_broker_dies_mid_file(tmp_path, own_broker):
    """A broker of the test's own (other ports), killed while produce is reading its input:
    lines arrive on standard input before and after the kill, so the time measured is the
    tool's giving up, not how long it takes to read a big file."""
    from streams.tools.processes import stop_process

    address, cfg = own_broker(19392)
    proc = None
    try:
        create_topics(address, ["doomed"], partitions=2)
        exe = Path(sys.executable).parent / "leadstage"
        give_up_s = 4
        proc = subprocess.Popen([str(exe), "produce", "--file", "-", "--topic", "doomed",
                                 "--give-up-after", str(give_up_s)],
                                env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": address},
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdout=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write("".join(line(i) + "\n" for i in range(5000)).encode())
        proc.stdin.flush()
        read_topic(address, "doomed", want=1, timeout_s=30)  # sending by now
        os.kill(int(cfg.pid_file.read_text()), 9)
        proc.stdin.write("".join(line(i) + "\n" for i in range(5000, 10_000)).encode())
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=180)  # closes its standard input: the end
        took = time.monotonic() - started
        text = stderr.decode()
        assert proc.returncode == 1, text
        assert "not delivered" in text or "not sent from line" in text, text
        # The tool's own worst case: a send blocked --give-up-after (kafka-python's
        # max_block_ms), the flush that + 5 s, closing 5 s: 18 s here, 50 s at the default of
        # 20; the rest is room for a busy CI.
        bound = give_up_s + (give_up_s + 5) + 5 + 15
        assert "Traceback" not in text and took < bound, (took, text)
    finally:
        if proc is not None:
            stop_process(proc)
