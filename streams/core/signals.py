"""What the stage machine reports besides stage changes: typed signals, one per measurable fact
(DESIGN §6). The worker turns them into metrics; the core never touches a metrics library."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


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


class StageChanged(NamedTuple):
    from_stage: str | None
    to_stage: str | None
    cause: Cause


class TimeInStage(NamedTuple):
    stage: str
    seconds: float


class Assessment(NamedTuple):
    team: str | None
    assessed_stage: str | None
    objective_stage: str | None
    verdict: str  # agree, overrated, underrated


class SalesDecision(NamedTuple):
    stage: str | None
    decision: str  # accepted, rejected


class HandoffResponse(NamedTuple):
    stage: str | None
    seconds: float


class SlaBreach(NamedTuple):
    stage: str | None


class Deal(NamedTuple):
    stage: str | None
    outcome: str  # won, lost
    amount: float


class PropertyRejected(NamedTuple):
    """An attributes value that is not a value of its declared property (left unchanged)."""

    property: str


class Trimmed(NamedTuple):
    """A lead's state hit a bound and dropped its oldest entries of `part`."""

    part: str


Signal = (StageChanged | TimeInStage | Assessment | SalesDecision | HandoffResponse | SlaBreach
          | Deal | Trimmed | PropertyRejected)
