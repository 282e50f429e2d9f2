"""Worker HTTP (DESIGN §7): /healthz, /metrics, and /leads/{lead_id} answered by the worker that
owns the lead's partition. An optional bearer token (LEADSTAGE_API_TOKEN) protects lead lookups."""

from __future__ import annotations

import hmac
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import app, compiled, leads_table, metrics, processor, settings
from streams.definitions.calendar import format_timestamp
from streams.lead_state import LeadState


def lead_document(state: LeadState, problem: str | None = None) -> dict[str, Any]:
    """What a lookup shows: current stage, since when, why, facts, recent changes, and the
    reason the lead is quarantined if its last evaluation failed."""
    try:
        return _document(state) | ({"problem": problem} if problem else {})
    except Exception as exc:  # one lead's failure must not become a 500
        processor.metrics.lead_failures.labels("lookup").inc()
        return {"lead_id": state.lead_id, "stage": state.stage, "sequence": state.sequence,
                "problem": problem or f"lookup failed: {type(exc).__name__}: {str(exc)[:200]}"}


def _document(state: LeadState) -> dict[str, Any]:
    facts = compiled.compute_facts(state.history, state.evaluated_at)
    return {
        "lead_id": state.lead_id,
        "stage": state.stage,
        "since": format_timestamp(state.since) if state.since else None,
        "sequence": state.sequence,
        "definitions_version": state.definitions_version,
        "evaluated_at": format_timestamp(state.evaluated_at),
        "reason": compiled.reason(state.stage, facts, state.evaluated_at),
        "facts": compiled.format_facts(facts),
        "next_review": format_timestamp(state.next_review) if state.next_review else None,
        "recent_changes": [
            {**c, "changed_at": format_timestamp(c["changed_at"])} for c in state.recent_changes
        ],
    }


def _authorised(request: Any) -> bool:
    token = settings.api_token
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    if processor.ready:
        return web.json({"status": "ready", "partitions": sorted(processor.partitions)})
    return web.json({"status": "starting"}, status=503)


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    # aiohttp wants the charset apart from the content type.
    content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
    return web.bytes(generate_latest(metrics.registry), content_type=content_type)


@app.page("/leads/{lead_id}")
@app.table_route(table=leads_table, match_info="lead_id")
async def lead(web: Any, request: Any, lead_id: str) -> Any:
    if not _authorised(request):
        return web.json({"error": "a valid bearer token is required"}, status=401)
    problem = processor.quarantined.get(lead_id)
    try:
        state = processor.store.find(lead_id)
    except Exception as exc:  # an unreadable state
        processor.metrics.lead_failures.labels("lookup").inc()
        return web.json({"lead_id": lead_id, "problem": problem or
                         f"its state cannot be read: {type(exc).__name__}"})
    if state is None or state.erased:
        return web.json({"error": f"no lead {lead_id}"}, status=404)
    return web.json(lead_document(state, problem))
