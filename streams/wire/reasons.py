"""Why an input record or line is refused: one closed set of reasons, used as the DLQ header
`leadstage.error.reason`, as the label of `leadstage_dead_letters_total{reason}` and in the
error lines of `leadstage produce`."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # bytes that are not a LeadActivity we can read
    UNDECODABLE = "undecodable"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    WRONG_RECORD_TYPE = "wrong_record_type"
    OVERSIZED = "oversized"
    # the record's key
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    # field rules (README "Input limits")
    MISSING_ID = "missing_id"
    INVALID_ID = "invalid_id"
    PII_IN_ID = "pii_in_id"
    MISSING_OCCURRED_AT = "missing_occurred_at"
    OCCURRED_AT_OUT_OF_RANGE = "occurred_at_out_of_range"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    MISSING_DECISION_BY = "missing_decision_by"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_CURRENCY = "invalid_currency"
    MISSING_ASSESSMENT = "missing_assessment"
    INVALID_TEXT = "invalid_text"
    TOO_LONG = "too_long"
    TOO_MANY_ATTRIBUTES = "too_many_attributes"
    BAD_FIELD = "bad_field"
    # the JSON-lines form only
    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_ACTIVITY = "unknown_activity"
    # the worker: a failure confined to one lead, or a defect of the gate itself
    PROCESSING_ERROR = "processing_error"
    INTERNAL = "internal"
