"""`leadstage demo` on the real broker: live metrics while it runs, a summary, nothing left."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request

from streams.tools import broker
from tests.integration.worker_harness import LEADSTAGE, worker_env


def test_demo_runs_shows_stages_and_stops_what_it_started(kafka_bootstrap, unique_name,
                                                          tmp_path):
    env = {**os.environ, **worker_env(kafka_bootstrap, unique_name("demo")),
           "LEADSTAGE_WEB_PORT": "16097", "LEADSTAGE_DATA_DIR": str(tmp_path / "data"),
           "LEADSTAGE_COLLECT_PORT": "16096", "COLUMNS": "120"}
    demo = subprocess.Popen([LEADSTAGE, "demo", "--duration", "12", "--leads", "300"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_changes = 0.0
    try:
        deadline = time.monotonic() + 120
        while demo.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:16097/metrics", timeout=2) as r:
                    text = r.read().decode()
                seen_changes = max(seen_changes, sum(
                    float(v) for v in re.findall(
                        r"^leadstage_stage_changes_total\{.*\} (\S+)$", text, re.M)))
            except OSError:
                pass
            time.sleep(1)
        out, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out
    assert seen_changes > 0, "no stage-change metrics were served while the demo ran"
    summary = out[out.index("Summary"):]
    counts = dict(re.findall(r"(cold|warm|hot) (\d+)", summary))
    assert set(counts) == {"cold", "warm", "hot"}, summary
    assert sum(map(int, counts.values())) > 0
    assert "marketing: " in summary and "sales: " in summary
    pid = int(re.search(r"worker pid (\d+)", out).group(1))
    assert not broker._pid_alive(pid), "the demo left its worker running"
    # web events went through a collector, which the demo also stopped
    assert "curl -X POST http://127.0.0.1:16096/v1/events" in out, out
    accepted = int(re.search(r"collector: (\d+) web events accepted over HTTP", out).group(1))
    assert accepted > 100, out
    collector_pid = int(re.search(r"collector pid (\d+)", out).group(1))
    assert not broker._pid_alive(collector_pid), "the demo left its collector running"


def test_demo_on_a_secured_broker_runs_each_part_as_its_principal(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "LEADSTAGE_"))}
    env |= {"LEADSTAGE_BROKER_PORT": "19792", "LEADSTAGE_BROKER_DIR": str(tmp_path / "broker"),
            "LEADSTAGE_WEB_PORT": "16098", "LEADSTAGE_DATA_DIR": str(tmp_path / "data"),
            "LEADSTAGE_COLLECT_PORT": "16099", "COLUMNS": "120"}
    out = subprocess.run([LEADSTAGE, "demo", "--secure", "--duration", "10", "--leads", "100"],
                         env=env, capture_output=True, text=True, timeout=240)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "SASL_SSL: the worker runs as leadstage-worker, the producers as producer-crm" in text
    summary = text[text.index("Summary"):]
    assert sum(map(int, re.findall(r"(?:cold|warm|hot) (\d+)", summary))) > 0, summary
    assert "broker stopped (this demo started it)" in text
    # the collector wrote as its own principal
    assert int(re.search(r"collector: (\d+) web events accepted", text).group(1)) > 0, text
    clients = (tmp_path / "broker" / "clients").glob("*.env")
    passwords = [line.split("=", 1)[1] for path in clients for line in path.read_text().split()
                 if line.startswith("KAFKA_SASL_PASSWORD")]
    assert passwords and not any(p in text for p in passwords)
