"""Every dashboard query returns data from a real Prometheus scraping a real worker, with the
project's rule files loaded."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from streams.core.calendar import MS_PER_DAY, format_date, format_timestamp
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.tools.generator import Generator, as_json
from tests.integration.worker_harness import Worker, produce_raw, worker_env
from tests.paths import REPO_ROOT

GRAFANA = REPO_ROOT / "deploy" / "grafana"
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules"
PROM_PORT = 19090
WORKER_PORT = 16098


def dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        doc = json.loads(path.read_text())
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                out.append((doc["title"], panel["title"], target["expr"]))
    return out


def prometheus_query(expr: str) -> list:
    url = f"http://127.0.0.1:{PROM_PORT}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        doc = json.loads(response.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def workload(now: int) -> tuple[list[dict], list[dict]]:
    """A realistic history, and leads that make sure every panel has something to show. The
    second list must arrive in its order: a follow-up that arrives before the lead became hot
    (in arrival order) is no handoff response, and a deal that arrives first moves the lead's
    evaluation time past its follow-up."""
    compiled = compile_definitions(load_file("definitions/lead-stages.yaml"))
    history = list(Generator(compiled, seed=11).history(300, 120, now))
    day = now // MS_PER_DAY

    def ev(i: str, lead: str, at: int, kind: str, **extra: object) -> dict:
        return {"event_id": f"x-{i}", "lead_id": lead, "occurred_at": at, "source": "CRM",
                "activity": kind, **extra}

    t = now - 5 * MS_PER_DAY
    panels = [
        # hot five days ago and never followed up: an SLA breach
        ev("b1", "X-breach", t, "CONTACTED"),
        ev("b2", "X-breach", t, "DECISION_TIMELINE_PROVIDED", decision_by=format_date(day + 30)),
        # hot, accepted the same day, won
        ev("w1", "X-won", t, "CONTACTED"),
        ev("w2", "X-won", t, "DECISION_TIMELINE_PROVIDED", decision_by=format_date(day + 60)),
        ev("w3", "X-won", t + 3_600_000, "SALES_ACCEPTED"),
        ev("w4", "X-won", t + 7_200_000, "DEAL_WON", amount=25000.0, currency="EUR"),
        ev("w5", "X-won", t + 7_300_000, "STAGE_ASSESSED", team="MARKETING", assessed_stage="hot"),
        ev("w6", "X-won", t + 7_400_000, "STAGE_ASSESSED", team="SALES", assessed_stage="warm"),
        # warm, rejected and lost
        ev("l1", "X-lost", t, "CONTACTED"),
        ev("l2", "X-lost", t, "PRICING_VIEWED"),
        ev("l3", "X-lost", t + 1000, "SALES_REJECTED", reason="no fit"),
        ev("l4", "X-lost", t + 2000, "DEAL_LOST", reason="price"),
    ]
    return history, panels


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: `make test` installs Debian's prometheus package"
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [{"job_name": "leadstage",
                            "static_configs": [{"targets": [f"127.0.0.1:{WORKER_PORT}"]}]}],
    }))
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([binary, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{PROM_PORT}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PROM_PORT}/-/ready", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "Prometheus did not become ready"
                time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_every_dashboard_query_returns_data(kafka_bootstrap, unique_name, tmp_path, prometheus):
    name = unique_name("obs")
    worker = Worker(worker_env(kafka_bootstrap, name), tmp_path / "data", WORKER_PORT,
                    tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        from streams.wire.avro import avro_codec
        from streams.wire.json_lines import parse_line

        now = int(time.time() * 1000)
        def as_read(events: list[dict]) -> list[dict]:
            return [parse_line(json.dumps(as_json(e))) for e in events]

        generated, fixed = workload(now)
        history, panels = as_read(generated), as_read(fixed)
        random.Random(2).shuffle(history)
        # the panel leads' events in their order, a quarter per chunk
        chunks = [history[i::4] + panels[i * len(panels) // 4:(i + 1) * len(panels) // 4]
                  for i in range(4)]
        for chunk in chunks:  # spread over time so rates have something to see
            records = [(e["lead_id"].encode(), avro_codec().encode("LeadActivity", e))
                       for e in chunk]
            records.append((b"X-poison", b"garbage " + format_timestamp(now).encode()))
            produce_raw(kafka_bootstrap, f"{name}-activity", records)
            time.sleep(2)  # two scrapes and rule evaluations (every 1 s) between chunks

        def empty_queries() -> list[str]:
            empty = []
            for dashboard, panel, expr in dashboard_queries():
                result = prometheus_query(expr)
                values = [float(r["value"][1]) for r in result]
                if not any(math.isfinite(v) for v in values):
                    empty.append(f"{dashboard} / {panel}: {expr} -> {result}")
            return empty

        # until every query has data: the last chunk's events take a few scrapes and rule
        # evaluations to reach rates and recording rules
        deadline = time.monotonic() + 60
        while (empty := empty_queries()) and time.monotonic() < deadline:
            time.sleep(1)
        assert not empty, "\n".join(empty)
    finally:
        worker.stop()
