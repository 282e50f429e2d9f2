"""What an activity does to a lead, decided in one place for the worker, the what-if tool and
the fault verifier (DESIGN §5)."""

from __future__ import annotations

from enum import Enum


class Route(Enum):
    #: folded into the lead's history; may move its stage
    FACT = "fact"
    #: a team's opinion: counted once, feeds the alignment metrics, never moves a stage
    OPINION = "opinion"
    #: the lead asked to be forgotten: its state goes, a tombstone is published
    ERASE = "erase"
    #: an activity this reader does not know (from a newer producer): ignored
    UNKNOWN = "unknown"


_ROUTES = {"STAGE_ASSESSED": Route.OPINION, "ERASURE_REQUESTED": Route.ERASE,
           "UNKNOWN": Route.UNKNOWN}


def route(activity: str) -> Route:
    return _ROUTES.get(activity, Route.FACT)
