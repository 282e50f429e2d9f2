"""LEADSTAGE_INSTANCE_ID on the real broker: a worker killed and restarted under the same id
gets its partitions back at once, not after the dead one's session expires; one restarted at
another address under the same id still gets them."""

from __future__ import annotations

import time

from streams.worker.assembly import SESSION_TIMEOUT_S
from tests.integration.kafka_helpers import read_to_end
from tests.integration.worker_harness import activity, produce_raw

HOUR = 3_600_000
AT = int(time.time() * 1000) - HOUR


def contact(bootstrap: str, name: str, leads: range, tag: str) -> None:
    produce_raw(bootstrap, f"{name}-activity", [
        (f"L{i}".encode(), activity(f"{tag}{i}", f"L{i}", AT + i, "CONTACTED")) for i in leads])


def wait_for_changes_of(bootstrap: str, name: str, leads: range) -> None:
    """Until every lead has a change. Changes may be published again (identical) after a kill,
    so count leads, not records."""
    wanted = {f"L{i}".encode() for i in leads}
    deadline = time.monotonic() + 60
    while True:
        seen = {r.key for r in read_to_end(bootstrap, f"{name}-changes")}
        if seen >= wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seen == wanted, sorted(wanted - seen)


def test_a_restarted_worker_takes_its_partitions_back_without_waiting_out_its_session(
        kafka_bootstrap, worker_factory):
    worker = worker_factory(16091, LEADSTAGE_INSTANCE_ID="worker-1").start()
    worker.wait_ready()
    contact(kafka_bootstrap, worker_factory.name, range(40), "a")
    wait_for_changes_of(kafka_bootstrap, worker_factory.name, range(40))

    worker.kill()  # no LeaveGroup: the group still counts the dead member
    started = time.monotonic()
    worker.start()
    worker.wait_ready()
    back_after = time.monotonic() - started
    # Dynamically, the coordinator waits for the dead member's session (10 s from its last
    # heartbeat) before it assigns anything; statically, the new process replaces it.
    assert back_after < SESSION_TIMEOUT_S * 0.6, (back_after, worker.tail())

    contact(kafka_bootstrap, worker_factory.name, range(40, 80), "b")
    wait_for_changes_of(kafka_bootstrap, worker_factory.name, range(80))


def test_a_worker_restarted_at_another_address_under_the_same_id_still_gets_its_partitions(
        kafka_bootstrap, worker_factory):
    first = worker_factory(16094, LEADSTAGE_INSTANCE_ID="worker-1").start()
    first.wait_ready()
    first.kill()
    # Kafka would hand it the dead member's assignment, which names the old address: the same
    # id alone made this worker fail inside the group coordinator and never become ready.
    moved = worker_factory(16095, LEADSTAGE_INSTANCE_ID="worker-1").start()
    moved.wait_ready(timeout_s=60)
    contact(kafka_bootstrap, worker_factory.name, range(20), "c")
    wait_for_changes_of(kafka_bootstrap, worker_factory.name, range(20))
