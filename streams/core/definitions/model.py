"""The loaded, type-checked definitions: plain immutable data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from streams.core.calendar import (
    MAX_DAY,
    MAX_OFFSET_YEARS,
    MIN_DAY,
    MS_PER_DAY,
    MS_PER_HOUR,
    parse_date,
)

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

    # cached: the sweep's review time reads these for every event
    @cached_property
    def months(self) -> int:
        """Calendar months (0 for fixed-length units)."""
        return {"months": self.amount, "years": 12 * self.amount}.get(self.unit, 0)

    @cached_property
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
    kind: str  # count | latest | first | last | sum | max
    activities: tuple[str, ...]
    type: Type
    description: str = ""
    within: Duration | None = None
    field: str | None = None  # for latest, sum and max
    line: int = 0

    @property
    def nullable(self) -> bool:
        return self.kind != "count"

    @property
    def values_key(self) -> str:
        """Where a lead's history keeps the values a sum or max reads ("ACTIVITY.field")."""
        return f"{self.activities[0]}.{self.field}"

    def describe(self) -> str:
        window = f" in the last {self.within}" if self.within else ""
        if self.kind == "count":
            return f"count of {', '.join(self.activities)}{window}"
        if self.kind in ("latest", "sum", "max"):
            return f"{self.kind} {self.activities[0]}.{self.field}{window}"
        return f"{self.kind} {', '.join(self.activities)}"


class PropertyType(Enum):
    """What a system of record holds (DESIGN §4.1), and the expression type it has."""

    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    BOOLEAN = "boolean"

    @property
    def type(self) -> Type:
        return {"number": Type.DECIMAL, "text": Type.TEXT, "date": Type.DATE,
                "boolean": Type.BOOLEAN}[self.value]


@dataclass(frozen=True)
class Property:
    """A value a system of record keeps about a lead, set by events of one source through
    their `attributes` map."""

    name: str
    type: PropertyType
    source: str  # WEB | CRM | OTHER
    attribute: str  # the attributes key that carries it
    description: str = ""
    values: tuple[str, ...] | None = None  # for text: every value it can take
    min: float | None = None  # for numbers
    max: float | None = None
    line: int = 0

    def describe(self) -> str:
        return f"{self.type.value} from {self.source} attribute `{self.attribute}`"

    def parse(self, raw: str) -> Any:
        """The value an attributes text gives the property: None for an empty text (which
        clears it); ValueError when it is not a value of the declared type (or not one of
        `values`, or outside `min`..`max`)."""
        text = raw.strip()
        if not text:
            return None
        if self.type is PropertyType.TEXT:
            if self.values is None or text not in self.values:
                raise ValueError(f"{text[:40]!r} is not one of the values of {self.name}")
            return text
        if self.type is PropertyType.NUMBER:
            number = float(text)
            if not math.isfinite(number) or (self.min is not None and number < self.min) or (
                    self.max is not None and number > self.max) or abs(number) > 1e15:
                raise ValueError(f"{text[:40]!r} is outside the bounds of {self.name}")
            return number
        if self.type is PropertyType.DATE:
            day = parse_date(text)
            if not MIN_DAY <= day <= MAX_DAY:
                raise ValueError(f"{text[:40]!r} is outside 1970-01-01..2199-12-31")
            return day
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{text[:40]!r} is not true or false")
        return lowered == "true"


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
    properties: dict[str, Property] = field(default_factory=dict)
    path: str = ""
    source_text: str = field(default="", repr=False)

    @property
    def value_names(self) -> tuple[str, ...]:
        """Facts then properties: the order of a lead's values in evaluation and reports."""
        return (*self.facts, *self.properties)

    def value_type(self, name: str) -> Type:
        if name in self.facts:
            return self.facts[name].type
        return self.properties[name].type.type

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @cached_property
    def _ranks(self) -> dict[str, int]:
        # worked out once: every opinion the worker counts asks for two ranks
        return {name: i for i, name in enumerate(self.stage_names)}

    def rank(self, stage: str | None) -> int:
        """Funnel position (0 = lowest); -1 for no stage or a stage these definitions lack."""
        return self._ranks.get(stage, -1) if stage is not None else -1
