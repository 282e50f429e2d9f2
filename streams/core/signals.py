"""What the stage machine reports besides stage changes: typed signals, one per measurable fact
(DESIGN §6). The worker turns them into metrics; the core never touches a metrics library.

Signals are msgspec structs rather than named tuples: a named tuple's `__new__` is Python code
generated at run time, so building one runs interpreted even in the compiled worker, and a
stage change makes two. Frozen, and outside the cycle collector: they hold only strings and numbers.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Cause(StrEnum):
    """Why a stage changed (LeadStageChanged.cause)."""

    EVENT = "EVENT"
    TIME = "TIME"
    DEFINITIONS = "DEFINITIONS"


class Outcome(StrEnum):
    """What became of an input event (leadstage_events_total{outcome})."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    INVALID = "invalid"


class StageChanged(msgspec.Struct, frozen=True, gc=False):
    from_stage: str | None
    to_stage: str | None
    cause: Cause


class TimeInStage(msgspec.Struct, frozen=True, gc=False):
    stage: str
    seconds: float


class Assessment(msgspec.Struct, frozen=True, gc=False):
    team: str | None
    assessed_stage: str | None
    objective_stage: str | None
    verdict: str  # agree, overrated, underrated


class SalesDecision(msgspec.Struct, frozen=True, gc=False):
    stage: str | None
    decision: str  # accepted, rejected


class HandoffResponse(msgspec.Struct, frozen=True, gc=False):
    stage: str | None
    seconds: float


class SlaBreach(msgspec.Struct, frozen=True, gc=False):
    stage: str | None


class Deal(msgspec.Struct, frozen=True, gc=False):
    stage: str | None
    outcome: str  # won, lost
    amount: float


class PropertyRejected(msgspec.Struct, frozen=True, gc=False):
    """An attributes value that is not a value of its declared property (left unchanged)."""

    property: str


class Trimmed(msgspec.Struct, frozen=True, gc=False):
    """A lead's state hit a bound and dropped its oldest entries of `part`."""

    part: str


Signal = (StageChanged | TimeInStage | Assessment | SalesDecision | HandoffResponse | SlaBreach
          | Deal | Trimmed | PropertyRejected)
