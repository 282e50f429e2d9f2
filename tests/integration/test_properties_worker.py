"""DESIGN §4.1 on the real broker: the CRM sets a property and the lead's stage follows."""

from __future__ import annotations

import time

from streams.core.calendar import MS_PER_DAY
from tests.integration.worker_harness import activity, changes, produce_raw
from tests.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "definitions" / "examples" / "fit-and-intent.yaml"


def test_a_lead_turns_hot_when_the_crm_sets_its_segment(kafka_bootstrap, worker_factory):
    worker = worker_factory(16281, LEADSTAGE_DEFINITIONS=str(EXAMPLE)).start()
    worker.wait_ready()
    name = worker_factory.name
    t = int(time.time() * 1000) - 3_600_000
    company = {"industry": "software", "employees": "120"}  # the segment is not known yet
    first = [
        activity("c1", "F", t, "CONTACTED", source="CRM", attributes=company),
        activity("d1", "F", t + 1, "DECISION_TIMELINE_PROVIDED", source="CRM",
                 decision_by=t // MS_PER_DAY + 90),
        activity("b1", "F", t + 2, "BUDGET_CONFIRMED", source="CRM", amount=60_000.0,
                 currency="EUR"),
        # the website cannot set a CRM property
        activity("w1", "F", t + 3, "PAGE_VIEWED", attributes={"crm_segment": "mid_market"}),
    ]
    produce_raw(kafka_bootstrap, f"{name}-activity", [(b"F", v) for v in first])
    assert [c["stage"] for c in changes(kafka_bootstrap, f"{name}-changes", 1)] == ["cold"]
    status, doc = worker.get("/leads/F")
    assert status == 200 and doc["facts"]["segment"] == "none"
    assert doc["facts"]["industry"] == "software" and doc["facts"]["employees"] == "120.0"

    produce_raw(kafka_bootstrap, f"{name}-activity", [(b"F", activity(
        "c2", "F", t + 4, "CONTACTED", source="CRM", attributes={"crm_segment": "mid_market"}))])
    got = changes(kafka_bootstrap, f"{name}-changes", 2)
    assert [c["stage"] for c in got] == ["cold", "hot"]
    hot = got[1]
    assert hot["facts"]["segment"] == "mid_market" and hot["facts"]["budget"] == "60000.0"
    assert "segment" in hot["reason"] and hot["cause"] == "EVENT"
