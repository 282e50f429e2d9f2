"""How a lead's stage moves (DESIGN §5), as plain functions on LeadState: the pure core the worker,
the what-if tool and the tests share.

- An event is folded into the history and the lead is evaluated at its evaluation time: the
  latest occurred_at seen, but never earlier than the lead was last evaluated (late events do not
  make a lead flap back).
- Time moves stages too: `advance` evaluates the lead at each instant where time alone changes
  something (review.next_review), up to a given time, with cause TIME; those instants are exact,
  so the same state always yields the same changes.
- Opinions (STAGE_ASSESSED) never move a stage and never advance the clock; they, sales
  decisions, handoff follow-ups and deals only produce metric signals.
- Every change gets the next sequence number and goes into the state's outbox.
"""

from __future__ import annotations

from typing import Any

from streams.core.calendar import add_months_ms
from streams.core.definitions.compiler import CompiledDefinitions
from streams.core.definitions.model import Property
from streams.core.definitions.review import next_review
from streams.core.lead_history import LeadHistory, seen_key
from streams.core.lead_state import LeadState
from streams.core.routing import ERASE, OPINION, route
from streams.core.signals import (
    Assessment,
    Cause,
    Deal,
    HandoffResponse,
    Outcome,
    PropertyRejected,
    SalesDecision,
    Signal,
    SlaBreach,
    StageChanged,
    TimeInStage,
    Trimmed,
)

FOLLOW_UPS = frozenset({"SALES_ACCEPTED", "SALES_REJECTED", "MEETING_HELD"})
#: The activities that may give business signals (_business_signals): one test for the others
BUSINESS = FOLLOW_UPS | {"DEAL_WON", "DEAL_LOST"}
#: A change's `reason` is cut to this many characters (it quotes rules and values, and the
#: definitions bound how many), so change records and states stay small.
MAX_REASON_CHARS = 2000
APPLIED, DUPLICATE = Outcome.APPLIED, Outcome.DUPLICATE
EVENT = Cause.EVENT  # routing.py says why Enum members are read once


class StageMachine:
    def __init__(self, compiled: CompiledDefinitions) -> None:
        self.compiled = compiled
        self.definitions = compiled.definitions
        self.version = self.definitions.version
        handoff = self.definitions.handoff
        self.handoff_stage = handoff.stage if handoff else None
        self.follow_up = handoff.follow_up_within if handoff else None
        #: source -> the properties its events may set
        self.properties_of: dict[str, tuple[Property, ...]] = {}
        for prop in self.definitions.properties.values():
            self.properties_of[prop.source] = (*self.properties_of.get(prop.source, ()), prop)
        #: Activities some fact reads, and the follow-ups that end a handoff. Any other event
        #: changes no fact: with the clock advanced to it (every review before it done), the
        #: lead's stage and next review time stay as they are, so it is not evaluated again.
        #: Not with a comparison that reads time on both sides: its review time is a re-check
        #: an hour or a day after each evaluation, which skipping would move.
        self.reads_activity: frozenset[str] | None = frozenset(
            a for fact in self.definitions.facts.values() for a in fact.activities
        ) | FOLLOW_UPS if all(p.monotone for p in compiled.time_pairs) else None

    # --- events ------------------------------------------------------------------------------

    def fold(self, state: LeadState, event: dict[str, Any], signals: list[Signal]) -> Outcome:
        """Apply one valid event whatever its route: erasure, opinion or fact."""
        if route(event["activity"]) is ERASE:
            self.erase(state, event, signals)
            return APPLIED
        return self.apply(state, event, signals)

    def apply(self, state: LeadState, event: dict[str, Any], signals: list[Signal]) -> Outcome:
        """Fold one valid event in; APPLIED or DUPLICATE."""
        unchanged = not state.erased and state.definitions_version == self.version \
            and state.evaluated_at > 0  # the lead's last evaluation still describes it
        if state.erased:
            state.erased = False
            state.history = LeadHistory()
        history = state.history
        event_id = event["event_id"]
        key = seen_key(event_id)  # worked out once for the uses below
        if history.counted(key):
            return DUPLICATE
        at = event["occurred_at"]
        if route(event["activity"]) is OPINION:
            history.mark_seen(event_id, at, key)  # counted once, but an opinion moves nothing
            signals.extend(Trimmed(part) for part in history.take_trimmed())
            signals.append(Assessment(event.get("team"), event.get("assessed_stage"),
                                      state.stage,
                                      self.verdict(event.get("assessed_stage"), state.stage)))
            return APPLIED
        when = max(state.evaluated_at, at)
        review = state.next_review
        if review is not None and review <= when:  # most events: nothing due, no call
            self.advance(state, when, signals)
        if event["activity"] in BUSINESS:
            self._business_signals(state, event, signals)
        history.fold_new(event, key)  # its id was found new above
        if self.properties_of and event.get("attributes") \
                and event["source"] in self.properties_of:
            self.set_properties(history, event, signals)
            unchanged = False
        trimmed = history.take_trimmed()
        if trimmed:
            signals.extend(Trimmed(part) for part in trimmed)
        now = max(when, history.max_occurred_at)
        reads = self.reads_activity
        if unchanged and reads is not None and event["activity"] not in reads:
            state.evaluated_at = max(state.evaluated_at, now)  # what evaluate would change
            return APPLIED
        self.evaluate(state, now, EVENT, event_id, signals)
        return APPLIED

    def set_properties(self, history: LeadHistory, event: dict[str, Any],
                        signals: list[Signal]) -> None:
        """Properties the event's source may set, from its attributes, as of its occurred_at."""
        attributes = event["attributes"]
        for prop in self.properties_of.get(event["source"], ()):
            raw = attributes.get(prop.attribute)
            if raw is None:
                continue
            try:
                value = prop.parse(raw)
            except ValueError:
                signals.append(PropertyRejected(prop.name))
                continue
            history.set_property(prop.name, event["occurred_at"], value)

    def erase(self, state: LeadState, event: dict[str, Any], signals: list[Signal]) -> None:
        """Forget the lead; keep only its sequence so numbering never restarts."""
        if state.stage is not None:
            at = max(state.evaluated_at, event["occurred_at"])
            self._change(state, None, at, Cause.EVENT, event["event_id"],
                         "erasure requested: everything about the lead was deleted", {}, signals)
        state.history = LeadHistory()
        state.forget_changes()
        state.handoff_since = None
        state.handoff_breached = False
        state.next_review = None
        state.erased = True

    # --- time and definitions -----------------------------------------------------------------

    def advance(self, state: LeadState, until: int, signals: list[Signal]) -> None:
        """Apply every time-driven change due at or before `until` (cause TIME)."""
        while state.next_review is not None and state.next_review <= until:
            due = state.next_review
            if (state.handoff_since is not None and not state.handoff_breached
                    and self.follow_up is not None
                    and self._deadline(state.handoff_since) <= due):
                state.handoff_breached = True
                signals.append(SlaBreach(self.handoff_stage))
            self.evaluate(state, due, Cause.TIME, None, signals)
            if state.next_review is not None and state.next_review <= due:
                state.next_review = due + 1  # defensive: time must move on

    def redefine(self, state: LeadState, signals: list[Signal]) -> None:
        """Re-evaluate under new definitions (cause DEFINITIONS), at the lead's own time."""
        if state.erased or state.definitions_version == self.version:
            return
        at = max(state.evaluated_at, state.history.max_occurred_at)
        self.evaluate(state, at, Cause.DEFINITIONS, None, signals)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, state: LeadState, now: int, cause: Cause, cause_event_id: str | None,
                 signals: list[Signal]) -> None:
        compiled = self.compiled
        facts = compiled.compute_facts(state.history, now)
        index = compiled.stage_of(facts, now)
        stage = self.definitions.stages[index].name if index >= 0 else None
        if index == -2:
            raise RuntimeError("no stage holds: the definitions did not pass the checker")
        state.evaluated_at = max(state.evaluated_at, now)
        if stage != state.stage:
            shown = compiled.format_facts(facts)
            self._change(state, stage, now, cause, cause_event_id,
                         compiled.reason(stage, facts, now, shown), shown, signals)
        state.definitions_version = self.version
        review = next_review(compiled, state.history, now, facts)
        if (state.handoff_since is not None and not state.handoff_breached
                and self.follow_up is not None):
            deadline = self._deadline(state.handoff_since)
            if deadline > now and (review is None or deadline < review):
                review = deadline
        state.next_review = review

    def _change(self, state: LeadState, stage: str | None, now: int, cause: Cause,
                cause_event_id: str | None, reason: str, facts: dict[str, str],
                signals: list[Signal]) -> None:
        previous = state.stage
        state.sequence += 1
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[:MAX_REASON_CHARS - 1] + "…"
        change = {
            "event_id": f"{state.lead_id}:{state.sequence}", "lead_id": state.lead_id,
            "sequence": state.sequence, "previous_stage": previous, "stage": stage,
            # a StrEnum: str() is its value, without the call of Enum's `value` property
            "changed_at": now, "cause": str(cause), "cause_event_id": cause_event_id,
            "definitions_version": self.version, "reason": reason, "facts": facts,
        }
        signals.append(StageChanged(previous, stage, cause))
        if previous is not None:
            signals.append(TimeInStage(previous, max(0, now - state.since) / 1000))
        if stage == self.handoff_stage and previous != stage:
            state.handoff_since, state.handoff_breached = now, False
        elif stage != self.handoff_stage:
            state.handoff_since = None
        state.stage, state.since = stage, now
        state.add_to_outbox(change)

    def _deadline(self, since: int) -> int:
        assert self.follow_up is not None
        at = add_months_ms(since, self.follow_up.months) if self.follow_up.months else since
        return at + self.follow_up.millis

    def _business_signals(self, state: LeadState, event: dict[str, Any],
                          signals: list[Signal]) -> None:
        activity = event["activity"]
        stage = state.stage
        if activity in ("SALES_ACCEPTED", "SALES_REJECTED"):
            signals.append(SalesDecision(stage, "accepted" if activity == "SALES_ACCEPTED"
                                         else "rejected"))
        if activity in FOLLOW_UPS and state.handoff_since is not None \
                and event["occurred_at"] >= state.handoff_since:
            signals.append(HandoffResponse(self.handoff_stage,
                                           (event["occurred_at"] - state.handoff_since) / 1000))
            state.handoff_since = None
        if activity in ("DEAL_WON", "DEAL_LOST"):
            won = activity == "DEAL_WON"
            signals.append(Deal(stage, "won" if won else "lost",
                                (event.get("amount") or 0.0) if won else 0.0))

    def verdict(self, assessed: str | None, objective: str | None) -> str:
        a, o = self.definitions.rank(assessed), self.definitions.rank(objective)
        return "agree" if a == o else ("overrated" if a > o else "underrated")
