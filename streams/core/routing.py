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


#: The routes as plain module globals for the hot path: in Python 3.11 reading an Enum member
#: through its class (`Route.FACT`) takes about four times as long as reading a global, and each
#: event is routed three times.
FACT, OPINION, ERASE, UNKNOWN = Route.FACT, Route.OPINION, Route.ERASE, Route.UNKNOWN

#: typed as a dict once compiled (routing.pxd), so `get` is a C call: every event is routed
#: three times
_ROUTES = {"STAGE_ASSESSED": OPINION, "ERASURE_REQUESTED": ERASE, "UNKNOWN": UNKNOWN}


def route(activity: str) -> Route:
    return _ROUTES.get(activity, FACT)
