"""Fixtures shared by the integration tests (the broker fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.integration.worker_harness import Worker, worker_env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


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
