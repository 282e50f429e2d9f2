"""`leadstage demo`: the whole system on one machine, without Docker.

Starts (or reuses) the local broker, starts a worker and a collector, backfills a synthetic
history of web and CRM activity, keeps producing live events (web events over HTTP through the
collector, CRM events with the producer SDK, and the odd malformed record), and shows what the
worker reports on its /metrics page. On Ctrl-C or after --duration it prints a summary and stops
every process it started (the broker only if it was not running before).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from streams.adapters.producer import LeadActivityProducer
from streams.adapters.settings import CollectorSettings, Settings
from streams.adapters.topics import ensure_topics
from streams.core.calendar import MS_PER_DAY, format_date
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.resources import local_root
from streams.tools import broker
from streams.tools.broker_security import read_client_file
from streams.tools.collector.keys import add_key
from streams.tools.generator import Generator
from streams.tools.processes import NotReady, stop_process, wait_healthy

LIVE_EVENTS_PER_SECOND = 40


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name].append((s.labels, s.value))
    return samples


def summarise(m: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, Any]:
    def total(name: str, **match: str) -> float:
        return sum(v for labels, v in m.get(name, [])
                   if all(labels.get(k) == want for k, want in match.items()))

    stages = {labels["stage"]: int(v) for labels, v in m.get("leadstage_leads", [])}
    causes: dict[str, int] = defaultdict(int)
    for labels, v in m.get("leadstage_stage_changes_total", []):
        causes[labels["cause"]] += int(v)
    agreement = {}
    for team in ("MARKETING", "SALES"):
        all_ = total("leadstage_assessments_total", team=team)
        agree = total("leadstage_assessments_total", team=team, verdict="agree")
        over = total("leadstage_assessments_total", team=team, verdict="overrated")
        agreement[team] = (agree / all_ if all_ else None, over / all_ if all_ else None, all_)
    return {
        "stages": stages, "changes": dict(causes), "agreement": agreement,
        "events": total("leadstage_events_total"),
        "dead_letters": total("leadstage_dead_letters_total"),
        "sla_breaches": total("leadstage_handoff_sla_breaches_total"),
        "won": total("leadstage_deals_closed_total", outcome="won"),
    }


def render(summary: dict[str, Any], rate: float, changes_rate: float, elapsed: float) -> Group:
    stages = Table(title="leads per stage")
    for stage in summary["stages"]:
        stages.add_column(stage, justify="right")
    stages.add_row(*[str(n) for n in summary["stages"].values()])
    flow = Table(title=f"after {elapsed:.0f}s")
    for col in ("events/s", "stage changes/s", "dead letters", "SLA breaches", "deals won"):
        flow.add_column(col, justify="right")
    flow.add_row(f"{rate:.0f}", f"{changes_rate:.1f}", f"{summary['dead_letters']:.0f}",
                 f"{summary['sla_breaches']:.0f}", f"{summary['won']:.0f}")
    teams = Table(title="do the teams agree with the objective stage?")
    for col in ("team", "assessments", "agree", "overrated"):
        teams.add_column(col, justify="right")
    for team, (agree, over, n) in summary["agreement"].items():
        teams.add_row(team, f"{n:.0f}", "-" if agree is None else f"{agree:.0%}",
                      "-" if over is None else f"{over:.0%}")
    return Group(stages, flow, teams)


def live_events(rng: random.Random, generator: Generator, leads: list[str], now: int
                ) -> list[dict[str, Any]]:
    """A second's worth of live web and CRM activity."""
    events = []
    for _ in range(LIVE_EVENTS_PER_SECOND):
        roll = rng.random()
        lead = rng.choice(leads)
        if roll < 0.05:
            lead = f"L-live-{rng.randrange(10**9):09d}"
            leads.append(lead)
            events.append(generator.event(lead, now, "CONTACTED", "WEB"))
        elif roll < 0.75:
            kind = rng.choice(["PAGE_VIEWED", "EMAIL_CLICKED", "CONTENT_DOWNLOADED",
                               "PRICING_VIEWED", "DEMO_REQUESTED", "WEBINAR_ATTENDED"])
            events.append(generator.event(lead, now, kind, "WEB"))
        elif roll < 0.82:
            events.append(generator.event(
                lead, now, "DECISION_TIMELINE_PROVIDED", "CRM",
                decision_by=format_date(now // MS_PER_DAY + rng.choice([30, 90, 150, 300]))))
        elif roll < 0.92:
            team = rng.choice(["MARKETING", "SALES"])  # marketing sees more hot leads
            weights = [15, 35, 50] if team == "MARKETING" else [40, 40, 20]
            events.append(generator.event(lead, now, "STAGE_ASSESSED", "CRM", team=team,
                                           assessed_stage=rng.choices(["cold", "warm", "hot"],
                                                                      weights)[0]))
        else:
            events.append(generator.event(lead, now, rng.choice(
                ["SALES_ACCEPTED", "MEETING_HELD", "SALES_REJECTED"]), "CRM"))
    return events


def run(duration: float | None, leads: int, console: Console | None = None,
        secure: bool = False) -> int:
    """With `secure`, on the secured local broker: topics made as `admin`, the worker runs as
    `leadstage-worker` and the producers as `producer-crm` (README "Security")."""
    console = console or Console()
    settings = Settings.from_env()
    started_broker = False
    worker: subprocess.Popen[bytes] | None = None
    producer: LeadActivityProducer | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    worker_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap or ""}
    collector: subprocess.Popen[bytes] | None = None
    cfg = broker.BrokerConfig.from_env(secure=secure)
    try:
        if not bootstrap:
            bootstrap, started_broker = broker.start(cfg, echo=lambda m: console.print(m))
            worker_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
            settings = Settings.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
        collector_env = dict(worker_env)
        if secure:  # each part as its principal: the collector as `collector`
            def as_principal(name: str) -> dict[str, str]:
                return read_client_file(cfg.clients_dir / f"{name}.env")

            ensure_topics(Settings.from_env({**os.environ, **as_principal("admin")}))
            worker_env = as_principal("leadstage-worker")
            collector_env = as_principal("collector")
            settings = Settings.from_env({**os.environ, **as_principal("producer-crm")})
            console.print(f"Kafka at {bootstrap}, SASL_SSL: the worker runs as "
                          "leadstage-worker, the producers as producer-crm")
        else:
            console.print(f"Kafka at {bootstrap}")
            ensure_topics(settings)
        log_path = Path(settings.data_dir).parent / "demo-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.tools.cli", "worker", "-l", "warn"],
                cwd=local_root(), env={**os.environ, **worker_env},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # Ctrl-C reaches the demo, which stops it in order
        base = f"http://{settings.web_host}:{settings.web_port}"
        console.print(f"worker pid {worker.pid}, log {log_path}")
        wait_healthy(base, worker, 120, log_path)
        console.print(f"worker ready: {base}/metrics and {base}/leads/<lead_id>")
        collector, collect_url, collect_key = _start_collector(
            console, log_path.parent, {**os.environ, **collector_env})

        compiled = compile_definitions(load_file(settings.definitions))
        generator = Generator(compiled, seed=random.randrange(10**6))
        producer = LeadActivityProducer(settings)
        now = int(time.time() * 1000)
        history = list(generator.history(leads, 120, now))
        lead_ids = sorted({e["lead_id"] for e in history})
        with console.status(f"backfilling {len(history)} events for {leads} leads..."):
            report = producer.send_many(history)
        console.print(f"backfilled {report.sent} events ({len(report.failed)} rejected); try "
                      f"`leadstage lead {lead_ids[0]}` or {base}/leads/{lead_ids[-1]}")

        rng = random.Random(7)
        started = time.monotonic()
        last_events, last_changes, last_t = 0.0, 0.0, started
        summary = summarise(scrape(f"{base}/metrics"))
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while duration is None or time.monotonic() - started < duration:
                tick = time.monotonic()
                web = []
                for event in live_events(rng, generator, lead_ids, int(time.time() * 1000)):
                    if event["source"] == "WEB":
                        web.append(event)
                    else:
                        producer.send(event)
                _post(collect_url, collect_key, web)
                if collector.poll() is not None:
                    raise RuntimeError(f"the collector exited ({collector.returncode})")
                if rng.random() < 0.2:  # a broken producer somewhere
                    producer.send_encoded(b"L-broken", b"\x00 not avro")
                producer.flush()
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited ({worker.returncode}); see {log_path}")
                summary = summarise(scrape(f"{base}/metrics"))
                t = time.monotonic()
                changes = float(sum(summary["changes"].values()))
                rate = (summary["events"] - last_events) / max(t - last_t, 1e-3)
                changes_rate = (changes - last_changes) / max(t - last_t, 1e-3)
                last_events, last_changes, last_t = summary["events"], changes, t
                live.update(render(summary, rate, changes_rate, t - started))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    except KeyboardInterrupt:
        console.print("stopping...")
    except (broker.BrokerError, NotReady, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        _cleanup(console, worker, collector, producer, cfg if started_broker else None)
        return 1
    final = None
    if worker is not None and worker.poll() is None:
        try:
            final = summarise(scrape(f"http://{settings.web_host}:{settings.web_port}/metrics"))
        except OSError:
            final = None
    collected = _collected(collect_url) if collector is not None else None
    _cleanup(console, worker, collector, producer, cfg if started_broker else None)
    if final:
        _print_summary(console, final)
    if collected is not None:
        console.print(f"collector: {collected:.0f} web events accepted over HTTP")
    return 0


def _start_collector(console: Console, folder: Path, env: dict[str, str]
                     ) -> tuple[subprocess.Popen[bytes], str, str]:
    """`leadstage collect` with a fresh keys file holding one server key for web events."""
    keys = folder / "demo-collect-keys.yaml"
    keys.unlink(missing_ok=True)
    key = add_key(keys, "demo-web", "WEB", "server", [])
    collect = CollectorSettings.from_env(env)
    url = f"http://{collect.host}:{collect.port}"
    log_path = folder / "demo-collect.log"
    with open(log_path, "wb") as log:
        collector = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "collect"], cwd=local_root(),
            env={**env, "LEADSTAGE_COLLECT_KEYS": str(keys)}, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    console.print(f"collector pid {collector.pid}, log {log_path}")
    try:
        wait_healthy(url, collector, 60, log_path)
    except NotReady:
        stop_process(collector)
        raise
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    console.print(f"collector ready at {url}; web events go through it. Try:", highlight=False)
    console.print(f"  curl -X POST {url}/v1/events -H 'Authorization: Bearer {key}' "
                  "-H 'Content-Type: application/json' -d '{\"event_id\": \"try-1\", "
                  f"\"lead_id\": \"L-try\", \"occurred_at\": \"{now}\", "
                  "\"activity\": \"CONTACTED\", \"source\": \"WEB\"}'",
                  highlight=False, soft_wrap=True)
    return collector, url, key


def _post(url: str, key: str, events: list[dict[str, Any]]) -> None:
    if not events:
        return
    request = urllib.request.Request(
        f"{url}/v1/events", data=json.dumps(events).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except OSError as exc:  # HTTPError included: the demo goes on, the log says why
        raise RuntimeError(f"the collector did not take the web events: {exc}") from None


def _collected(url: str) -> float | None:
    try:
        families = scrape(f"{url}/metrics")
    except OSError:
        return None
    return sum(v for labels, v in families.get("leadstage_collect_events_total", [])
               if labels.get("outcome") == "accepted")


def _cleanup(console: Console, worker: subprocess.Popen[bytes] | None,
             collector: subprocess.Popen[bytes] | None,
             producer: LeadActivityProducer | None,
             started_broker: broker.BrokerConfig | None) -> None:
    if producer is not None:
        producer.close(timeout_s=10)
    if collector is not None and collector.poll() is None:
        stop_process(collector)
        console.print(f"collector (pid {collector.pid}) stopped")
    if worker is not None and worker.poll() is None:
        stop_process(worker)
        console.print(f"worker (pid {worker.pid}) stopped")
    if started_broker is not None:
        broker.stop(started_broker)
        console.print("broker stopped (this demo started it)")


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    console.print("\n[bold]Summary[/]")
    console.print("leads per stage: " + ", ".join(f"{stage} {n}" for stage, n in
                                                   s["stages"].items()), highlight=False)
    console.print("stage changes by cause: " + ", ".join(
        f"{cause} {n}" for cause, n in sorted(s["changes"].items())), highlight=False)
    for team, (agree, over, n) in s["agreement"].items():
        text = "no assessments" if agree is None else \
            f"agrees with the objective stage {agree:.0%} of {n:.0f} times, overrates {over:.0%}"
        console.print(f"{team.lower()}: {text}", highlight=False)
    console.print(f"dead letters: {s['dead_letters']:.0f}, SLA breaches: "
                  f"{s['sla_breaches']:.0f}", highlight=False)
