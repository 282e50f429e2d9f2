"""The rules every LeadActivity must pass (DESIGN §5), in one place for producers and the worker."""

from __future__ import annotations

from typing import Any

from streams.definitions.calendar import MS_PER_DAY, parse_date

MAX_MESSAGE_BYTES = 1 << 20
MIN_OCCURRED_AT = parse_date("2000-01-01") * MS_PER_DAY
FUTURE_TOLERANCE_MS = MS_PER_DAY
MAX_ID_LENGTH = 256
MAX_ATTRIBUTES = 100


class InvalidEvent(ValueError):
    """An event that breaks a rule; `reason` is a short code (a metric label), the message says
    what is wrong in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate(record: dict[str, Any], now_ms: int) -> None:
    """Raise InvalidEvent for the first rule `record` (decoded LeadActivity) breaks."""
    for name in ("event_id", "lead_id"):
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEvent("missing_id", f"{name} is missing or empty")
        if len(value) > MAX_ID_LENGTH:
            raise InvalidEvent("invalid_id", f"{name} is longer than {MAX_ID_LENGTH} characters")
        if not value.isprintable():
            raise InvalidEvent("invalid_id", f"{name} contains control characters")
    if "@" in record["lead_id"]:
        raise InvalidEvent("pii_in_id", "lead_id looks like an e-mail address; use a "
                                        "pseudonymous id")
    at = record.get("occurred_at")
    if not isinstance(at, int):
        raise InvalidEvent("missing_occurred_at", "occurred_at is missing")
    if at < MIN_OCCURRED_AT:
        raise InvalidEvent("occurred_at_out_of_range", "occurred_at is before 2000-01-01")
    if at > now_ms + FUTURE_TOLERANCE_MS:
        raise InvalidEvent("occurred_at_out_of_range",
                           "occurred_at is more than one day in the future")
    activity = record.get("activity")
    if activity == "DECISION_TIMELINE_PROVIDED" and record.get("decision_by") is None:
        raise InvalidEvent("missing_decision_by",
                           "DECISION_TIMELINE_PROVIDED needs decision_by (the decision date)")
    if activity == "STAGE_ASSESSED" and (not record.get("team") or not record.get(
            "assessed_stage")):
        raise InvalidEvent("missing_assessment", "STAGE_ASSESSED needs team and assessed_stage")
    attributes = record.get("attributes") or {}
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidEvent("too_many_attributes", f"more than {MAX_ATTRIBUTES} attributes")


def check_size(size: int) -> None:
    if size > MAX_MESSAGE_BYTES:
        raise InvalidEvent("oversized", f"the message is {size} bytes; the limit is "
                                        f"{MAX_MESSAGE_BYTES}")
