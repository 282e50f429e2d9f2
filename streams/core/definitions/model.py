"""The loaded, type-checked definitions: plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from streams.core.calendar import MAX_OFFSET_YEARS, MS_PER_DAY, MS_PER_HOUR

if TYPE_CHECKING:  # the parser builds the trees; model only names their type
    from streams.core.definitions.expressions import Node

#: The longest duration (and the largest total offset of a date) the language accepts, measured
#: as Duration.max_days does (a month as 31 days), so that exactly 100 years passes.
MAX_DURATION_DAYS = MAX_OFFSET_YEARS * 12 * 31


class Type(Enum):
    """Value types of the expression language."""

    COUNT = "count"
    DECIMAL = "decimal"
    DATE = "date"
    TIMESTAMP = "timestamp"
    DURATION = "duration"
    BOOLEAN = "true/false"
    TEXT = "text"
    NONE = "none"

    @property
    def article(self) -> str:
        return {"count": "a count", "decimal": "a number", "date": "a date",
                "timestamp": "a timestamp", "duration": "a duration",
                "true/false": "a true/false condition", "text": "a text",
                "none": "none"}[self.value]


NUMERIC = frozenset({Type.COUNT, Type.DECIMAL})
TEMPORAL = frozenset({Type.DATE, Type.TIMESTAMP})


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # hours, days, weeks, months, years (plural)

    @property
    def months(self) -> int:
        """Calendar months (0 for fixed-length units)."""
        return {"months": self.amount, "years": 12 * self.amount}.get(self.unit, 0)

    @property
    def millis(self) -> int:
        """Fixed length in ms (0 for calendar units)."""
        per = {"hours": MS_PER_HOUR, "days": MS_PER_DAY, "weeks": 7 * MS_PER_DAY}
        return self.amount * per.get(self.unit, 0)

    @property
    def max_days(self) -> float:
        return self.millis / MS_PER_DAY + self.months * 31

    @property
    def min_days(self) -> float:
        return self.millis / MS_PER_DAY + self.months * 28

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


@dataclass(frozen=True)
class Fact:
    name: str
    kind: str  # count | latest | first | last
    activities: tuple[str, ...]
    type: Type
    description: str = ""
    within: Duration | None = None
    field: str | None = None  # for latest
    line: int = 0

    @property
    def nullable(self) -> bool:
        return self.kind != "count"

    def describe(self) -> str:
        if self.kind == "count":
            text = f"count of {', '.join(self.activities)}"
            return text + (f" in the last {self.within}" if self.within else "")
        if self.kind == "latest":
            return f"latest {self.activities[0]}.{self.field}"
        return f"{self.kind} {', '.join(self.activities)}"


@dataclass(frozen=True)
class Rule:
    """A boolean expression with its source text (for reasons and tables)."""

    source: str
    tree: Node  # type-checked
    line: int = 0


@dataclass(frozen=True)
class Stage:
    name: str
    meaning: str
    when: Rule
    line: int = 0


@dataclass(frozen=True)
class Handoff:
    stage: str
    follow_up_within: Duration


@dataclass(frozen=True)
class Definitions:
    version: int
    effective: int | None  # day number
    agreed_by: dict[str, str]
    facts: dict[str, Fact]
    conditions: dict[str, Rule]
    population: Rule | None
    stages: tuple[Stage, ...]
    handoff: Handoff | None
    path: str = ""
    source_text: str = field(default="", repr=False)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def rank(self, stage: str | None) -> int:
        """Funnel position (0 = lowest); -1 for no stage or a stage these definitions lack."""
        try:
            return self.stage_names.index(stage) if stage is not None else -1
        except ValueError:
            return -1
