"""docker-compose.yml is valid Compose and names only things that exist in the repo
(there is no Docker engine here: this is the check we can make)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from tests.paths import REPO_ROOT

SPEC = REPO_ROOT / "tests" / "data" / "compose-spec.json"  # vendored: see tests/data/README.md
COMPOSE = REPO_ROOT / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_against_the_compose_specification():
    assert SPEC.exists(), f"the Compose Specification schema is expected at {SPEC}"
    schema = json.loads(SPEC.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_validation_catches_a_broken_file():
    schema = json.loads(SPEC.read_text())
    broken = compose()
    broken["services"]["worker-1"]["ports"] = "6066"  # must be a list
    broken["services"]["kafka"]["restart"] = 3
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_services_paths_and_ports():
    doc = compose()
    assert set(doc["services"]) == {"kafka", "topics", "worker-1", "worker-2", "producer",
                                    "prometheus", "grafana", "forwarder", "collector"}
    assert doc["services"]["forwarder"]["profiles"] == ["forward"]  # off unless asked for
    for name, service in doc["services"].items():
        build = service.get("build")
        if build:
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert doc["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    for worker in ("worker-1", "worker-2"):
        env = doc["services"][worker]["environment"]
        assert env["LEADSTAGE_WEB_HOST"] == worker and env["LEADSTAGE_WEB_BIND"] == "0.0.0.0"
        assert env["LEADSTAGE_INSTANCE_ID"] == worker  # unique per worker (static membership)
        assert "healthcheck" in doc["services"][worker]
    collector = doc["services"]["collector"]
    assert collector["command"] == ["leadstage", "collect"]
    assert collector["environment"]["LEADSTAGE_COLLECT_HOST"] == "0.0.0.0"
    assert collector["ports"] == ["127.0.0.1:6070:6070"] and "healthcheck" in collector


def test_prometheus_scrapes_the_workers_and_loads_the_rules():
    config = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job, collect = config["scrape_configs"]
    assert job["job_name"] == "leadstage"  # the alerts and dashboards select on it
    targets = job["static_configs"][0]["targets"]
    assert targets == ["worker-1:6066", "worker-2:6066"]
    assert collect["static_configs"][0]["targets"] == ["collector:6070"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    mounted = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounted
    assert list(Path(REPO_ROOT / "deploy/prometheus/rules").glob("*.yml"))


def test_services_of_the_local_image_never_pull_it():
    services = compose()["services"]
    local = {name: s for name, s in services.items() if s.get("image") == "leadstage:local"}
    assert len(local) >= 3
    for name, service in local.items():
        expected = "build" if "build" in service else "never"
        assert service.get("pull_policy") == expected, name


def test_the_image_installs_dependencies_before_the_code_and_the_package_as_a_wheel():
    steps = [line.split()[0:2] for line in (REPO_ROOT / "deploy" / "Dockerfile").read_text()
             .splitlines() if line.startswith(("COPY", "RUN"))]
    first_code = steps.index(["COPY", "streams"])
    first_install = next(i for i, step in enumerate(steps) if step[0] == "RUN")
    assert first_install < first_code, steps
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install -e" not in dockerfile and "pip install --no-deps ." in dockerfile


def test_the_build_context_leaves_out_local_state():
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", ".git", "**/__pycache__", "bench/results.json",
            "build", "streams/**/*.so"} <= ignored  # the host's Cython build, not the image's
