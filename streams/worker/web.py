"""Worker HTTP (DESIGN §7): /healthz, /metrics, and /leads/{lead_id} answered by the worker that
owns the lead's partition. An optional bearer token (LEADSTAGE_API_TOKEN) protects lead lookups."""

from __future__ import annotations

import hmac
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.calendar import format_timestamp
from streams.core.definitions.compiler import CompiledDefinitions
from streams.core.lead_state import LeadState
from streams.worker.pipeline import LeadPipeline


def lead_document(compiled: CompiledDefinitions, state: LeadState) -> dict[str, Any]:
    """What a lookup shows: current stage, since when, why, facts, recent changes."""
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


def describe(compiled: CompiledDefinitions, pipeline: LeadPipeline, lead_id: str
             ) -> tuple[int, dict[str, Any]]:
    """(HTTP status, document) for a lead; one lead's failure is a `problem`, never a 500."""
    problem = pipeline.quarantined.get(lead_id)
    try:
        state = pipeline.store.find(lead_id)
    except Exception as exc:  # an unreadable state
        pipeline.metrics.lead_failures.labels("lookup").inc()
        return 200, {"lead_id": lead_id,
                     "problem": problem or f"its state cannot be read: {type(exc).__name__}"}
    if state is None or state.erased:
        return 404, {"error": f"no lead {lead_id}"}
    try:
        return 200, lead_document(compiled, state) | ({"problem": problem} if problem else {})
    except Exception as exc:
        pipeline.metrics.lead_failures.labels("lookup").inc()
        return 200, {"lead_id": state.lead_id, "stage": state.stage, "sequence": state.sequence,
                     "problem": problem or f"lookup failed: {type(exc).__name__}: "
                                           f"{str(exc)[:200]}"}


def authorised(token: str | None, header: str) -> bool:
    """Constant-time check of a bearer token; any header (bytes that are not UTF-8 arrive as
    surrogates) is an answer, never an error."""
    if not token:
        return True
    given = header.encode("utf-8", "surrogateescape")[:4096]
    return hmac.compare_digest(given, f"Bearer {token}".encode())


def register_pages(app: faust.App, table: Any, compiled: CompiledDefinitions,
                   pipeline: LeadPipeline, api_token: str | None) -> None:
    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        if pipeline.ready:
            return web.json({"status": "ready", "partitions": sorted(pipeline.partitions)})
        return web.json({"status": "starting"}, status=503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp wants the charset apart from the content type.
        content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
        return web.bytes(generate_latest(pipeline.metrics.registry), content_type=content_type)

    @app.page("/leads/{lead_id}")
    @app.table_route(table=table, match_info="lead_id")
    async def lead(web: Any, request: Any, lead_id: str) -> Any:
        if not authorised(api_token, request.headers.get("Authorization", "")):
            return web.json({"error": "a valid bearer token is required"}, status=401)
        status, document = describe(compiled, pipeline, lead_id)
        return web.json(document, status=status)
