"""Shared fixtures. Integration tests use a real Kafka broker: never a mock, never skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from streams.tools import broker as local_broker

_broker_used: list[str] = []


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The broker's bootstrap address: $KAFKA_BOOTSTRAP_SERVERS, else the local broker.

    If the broker cannot start the fixture errors, so every integration test fails loudly. A broker
    this session started is stopped (by pid) at the end; one that was already running is left.
    On the local broker, the topics the session created are deleted at its end.
    """
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        assert local_broker.accepts_clients(given, timeout_s=10), f"no Kafka at {given}"
        _broker_used.append(f"{given} (from KAFKA_BOOTSTRAP_SERVERS)")
        yield given
        return
    cfg = local_broker.BrokerConfig.from_env()
    try:
        address, started = local_broker.start(cfg, timeout_s=120)
    except local_broker.BrokerError as exc:
        pytest.fail(f"the local Kafka broker could not start: {exc}", pytrace=False)
    _broker_used.append(f"{address} ({'started by this run' if started else 'already running'})")
    with local_broker.topics_removed_after(address, data_dir=cfg.data_dir):
        yield address
    if started:
        local_broker.stop(cfg)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Topic and group names unique to a test, so tests never see each other's records."""
    run = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{run}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly which broker the integration tests used and how they fared."""
    stats = terminalreporter.stats
    integration = [
        r for key in ("passed", "failed", "error", "skipped") for r in stats.get(key, [])
        if getattr(r, "when", "call") == "call" and "integration" in r.keywords
    ]
    by_outcome: dict[str, int] = {}
    for report in integration:
        by_outcome[report.outcome] = by_outcome.get(report.outcome, 0) + 1
    where = _broker_used[0] if _broker_used else "no broker (none was needed)"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(by_outcome.items())) or "none ran"
    terminalreporter.write_line(f"integration tests against real Kafka at {where}: {counts}")
