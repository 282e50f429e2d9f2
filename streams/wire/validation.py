"""The rules every LeadActivity must pass (DESIGN §5), in one place for every entry point: the
producer SDK, `leadstage produce`, the HTTP collector and the worker's input gate.

The limits below are the contract with producers (README "Input limits", the schema's `doc`).
They exist so that anything a producer can send is something the worker can store, evaluate,
publish and dead-letter: every field that reaches a lead's state or an output record is bounded.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from streams.core.calendar import MAX_DAY, MIN_DAY, MS_PER_DAY, parse_date
from streams.wire.reasons import Reason

#: A whole input record (key + value) larger than this is dead-lettered before decoding; every
#: record within the field limits below is far smaller.
MAX_MESSAGE_BYTES = 256 * 1024
MIN_OCCURRED_AT = parse_date("2000-01-01") * MS_PER_DAY
FUTURE_TOLERANCE_MS = MS_PER_DAY
#: event_id and lead_id, in UTF-8 bytes
MAX_ID_BYTES = 256
MAX_ASSESSED_STAGE_BYTES = 64
MAX_REASON_BYTES = 1024
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 128
MAX_ATTRIBUTE_VALUE_BYTES = 1024
#: Amounts of money: finite, not negative, at most this (a thousand trillion).
MAX_AMOUNT = 1e15
_CURRENCY = re.compile(r"[A-Z]{3}")
#: Ids this short cannot exceed MAX_ID_BYTES whatever their characters (4 bytes at most each).
_SHORT_ID = MAX_ID_BYTES // 4


class InvalidEvent(ValueError):
    """An event that breaks a rule; `reason` is a short code (a metric label), the message says
    what is wrong in words."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _utf8_size(name: str, value: str) -> int:
    try:
        return len(value.encode())
    except UnicodeEncodeError:
        raise InvalidEvent(Reason.INVALID_TEXT, f"{name} is not valid Unicode text (it contains a "
                                                "lone surrogate)") from None


def _text_size(name: str, value: str) -> int:
    """Its UTF-8 size; ASCII text (nearly every field a producer sends) is its length, and
    cannot hold a lone surrogate, so it is not encoded to find out."""
    return len(value) if value.isascii() else _utf8_size(name, value)


def _bounded_text(name: str, value: object, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidEvent(Reason.BAD_FIELD, f"{name} must be text")
    if _text_size(name, value) > limit:
        raise InvalidEvent(Reason.TOO_LONG, f"{name} is longer than {limit} bytes")


def looks_like_email(text: str) -> bool:
    """True for anything with an "@" in any of its spellings: ASCII, URL-encoded ("%40"), and
    the full-width and small forms Unicode has (folded by NFKC)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return "@" in text or "%40" in text


def validate(record: dict[str, Any], now_ms: int) -> None:
    """Raise InvalidEvent for the first rule `record` (decoded LeadActivity) breaks. Compiled,
    `record` and its attributes are typed dict (validation.pxd): anything else raises
    TypeError."""
    for name in ("event_id", "lead_id"):
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEvent(Reason.MISSING_ID, f"{name} is missing or empty")
        if not value.isprintable():  # lone surrogates are not printable either
            raise InvalidEvent(Reason.INVALID_ID, f"{name} contains control or invalid characters")
        if len(value) > _SHORT_ID and _utf8_size(name, value) > MAX_ID_BYTES:
            raise InvalidEvent(Reason.INVALID_ID, f"{name} is longer than {MAX_ID_BYTES} bytes")
    if looks_like_email(record["lead_id"]):
        raise InvalidEvent(Reason.PII_IN_ID, "lead_id looks like an e-mail address; use a "
                                             "pseudonymous id")
    at = record.get("occurred_at")
    if not isinstance(at, int) or isinstance(at, bool):
        raise InvalidEvent(Reason.MISSING_OCCURRED_AT, "occurred_at is missing")
    if at < MIN_OCCURRED_AT:
        raise InvalidEvent(Reason.OCCURRED_AT_OUT_OF_RANGE, "occurred_at is before 2000-01-01")
    if at > now_ms + FUTURE_TOLERANCE_MS:
        raise InvalidEvent(Reason.OCCURRED_AT_OUT_OF_RANGE,
                           "occurred_at is more than one day in the future")
    activity = record.get("activity")
    decision_by = record.get("decision_by")
    if decision_by is not None and (isinstance(decision_by, bool) or not isinstance(
            decision_by, int) or not MIN_DAY <= decision_by <= MAX_DAY):
        raise InvalidEvent(Reason.DATE_OUT_OF_RANGE,
                           "decision_by must be a date from 1970-01-01 to 2199-12-31")
    if activity == "DECISION_TIMELINE_PROVIDED" and decision_by is None:
        raise InvalidEvent(Reason.MISSING_DECISION_BY,
                           "DECISION_TIMELINE_PROVIDED needs decision_by (the decision date)")
    amount = record.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)
                               or not math.isfinite(amount) or not 0 <= amount <= MAX_AMOUNT):
        raise InvalidEvent(Reason.INVALID_AMOUNT, f"amount must be a finite number from 0 to "
                                                  f"{MAX_AMOUNT:.0e}, not {amount!r}")
    currency = record.get("currency")
    if currency is not None and (not isinstance(currency, str)
                                 or not _CURRENCY.fullmatch(currency)):
        raise InvalidEvent(Reason.INVALID_CURRENCY,
                           "currency must be an ISO 4217 code: three capital letters")
    if activity == "STAGE_ASSESSED" and (not record.get("team") or not record.get(
            "assessed_stage")):
        raise InvalidEvent(Reason.MISSING_ASSESSMENT,
                           "STAGE_ASSESSED needs team and assessed_stage")
    assessed_stage, reason = record.get("assessed_stage"), record.get("reason")
    if assessed_stage is not None:
        _bounded_text("assessed_stage", assessed_stage, MAX_ASSESSED_STAGE_BYTES)
    if reason is not None:
        _bounded_text("reason", reason, MAX_REASON_BYTES)
    attributes = record.get("attributes")
    if not attributes:
        return
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidEvent(Reason.TOO_MANY_ATTRIBUTES, f"more than {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key or \
                _text_size("an attribute name", key) > MAX_ATTRIBUTE_KEY_BYTES:
            raise InvalidEvent(Reason.TOO_LONG, f"attribute names must be 1 to "
                                                f"{MAX_ATTRIBUTE_KEY_BYTES} bytes")
        # short ASCII text passes at once; anything else is checked in full, its name spelled
        # out for the error (a third of the events carry attributes)
        if value is not None and not (isinstance(value, str) and value.isascii()
                                      and len(value) <= MAX_ATTRIBUTE_VALUE_BYTES):
            _bounded_text(f"attribute {key!r}", value, MAX_ATTRIBUTE_VALUE_BYTES)


def check_size(size: int) -> None:
    if size > MAX_MESSAGE_BYTES:
        raise InvalidEvent(Reason.OVERSIZED, f"the message is {size} bytes; the limit is "
                                             f"{MAX_MESSAGE_BYTES}")
