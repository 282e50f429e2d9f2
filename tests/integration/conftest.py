"""Fixtures shared by the integration tests (the broker fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.integration.worker_harness import Worker, worker_env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def own_broker(tmp_path):
    """Starts a broker of the test's own (for tests that kill it) on `port`, its controller on
    port + 1; every one started is stopped after the test."""
    from streams.tools import broker

    started: list[broker.BrokerConfig] = []

    def start(port: int) -> tuple[str, broker.BrokerConfig]:
        cfg = broker.BrokerConfig(port=port, controller_port=port + 1,
                                  directory=tmp_path / f"broker-{port}")
        started.append(cfg)
        address, _ = broker.start(cfg, timeout_s=120)
        return address, cfg

    yield start
    for cfg in started:
        broker.stop(cfg)


@pytest.fixture
def worker_factory(kafka_bootstrap, unique_name, tmp_path):
    """Makes workers on topics of their own; every worker made is stopped after the test."""
    started: list[Worker] = []
    name = unique_name("w")

    def make(port: int, **extra: str) -> Worker:
        env = worker_env(kafka_bootstrap, name, **extra)
        w = Worker(env, tmp_path / f"data-{port}", port, tmp_path / f"worker-{port}.log")
        started.append(w)
        return w

    make.name = name  # type: ignore[attr-defined]
    yield make
    for w in started:
        w.stop()
