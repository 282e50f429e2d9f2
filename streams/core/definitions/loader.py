"""Loads a definitions YAML file (DESIGN §4), enforcing every rule, reporting every problem.

Each problem carries the file, the line and a sentence a sales manager can read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from streams.core.calendar import MAX_DAY, MAX_OFFSET_YEARS, MIN_DAY, MS_PER_DAY, day_number
from streams.core.catalog import (
    ENVELOPE_FIELDS,
    SUBJECTIVE_ACTIVITIES,
    SUBJECTIVE_FIELDS,
    SUMMED,
    Catalog,
    load_catalog,
)
from streams.core.definitions import expressions as ex
from streams.core.definitions.model import (
    MAX_DURATION_DAYS,
    Definitions,
    Duration,
    Fact,
    Handoff,
    Property,
    PropertyType,
    Rule,
    Stage,
    Type,
)

TOP_KEYS = ("version", "effective", "agreed_by", "properties", "facts", "conditions",
            "population", "stages", "handoff")
FACT_KINDS = ("count", "latest", "first", "last", "sum", "max")
PROPERTY_KEYS = ("description", "type", "from", "attribute", "values", "min", "max")
SOURCES = ("WEB", "CRM", "OTHER")
MAX_PROPERTIES = 50
MAX_PROPERTY_VALUES = 50
#: The longest `within`: a calendar year, or its longest length in days. A lead's history keeps
#: activity times for RETENTION_MS (400 days), longer than either (372 days at most as
#: Duration.max_days counts 12 months).
MAX_WINDOW = Duration(1, "years")
MAX_WINDOW_DAYS = 366
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_DURATION = re.compile(r"^\s*(\d{1,9})\s+(hour|day|week|month|year)s?\s*$")
#: Bounds that keep every accepted file runnable: versions fit Avro's int (LeadStageChanged
#: .definitions_version), and the number and length of names bound the size of a change record
#: (its `facts` map and `reason`) and the number of metric series (stages squared).
MAX_VERSION = 2**31 - 1
MAX_FACTS = 100
MAX_STAGES = 20
MAX_NAME_LENGTH = 64
#: A definitions file is a few kilobytes; this bounds what the loader and the proofs take on.
MAX_FILE_CHARS = 256 * 1024
MAX_FLOW_DEPTH = 32
#: Activities that cannot be facts, and why.
_NOT_FACTS = {
    "UNKNOWN": "UNKNOWN stands for activities a reader does not know yet, so it has no meaning",
    "ERASURE_REQUESTED": "ERASURE_REQUESTED deletes everything about the lead, so nothing can "
                         "count it",
}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class DefinitionsError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def parse_duration(value: object) -> Duration | None:
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match:
        return None
    return Duration(int(match.group(1)), match.group(2) + "s")


class _Loader:
    def __init__(self, path: str, text: str, catalog: Catalog) -> None:
        self.path = path
        self.text = text
        self.catalog = catalog
        self.problems: list[Problem] = []
        #: names whose own definition had problems: rules using them are not checked further
        self.broken: set[str] = set()
        self.props: dict[str, Property] = {}

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    @staticmethod
    def key_line(mapping: Any, key: object, default: int = 1) -> int:
        try:
            return int(mapping.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, TypeError):
            return default

    @staticmethod
    def line_of(node: Any, default: int = 1) -> int:
        try:
            return int(node.lc.line) + 1
        except AttributeError:
            return default

    def unknown_keys(self, mapping: Any, allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem(self.key_line(mapping, key),
                             f"`{key}` is not something {where} can contain; "
                             f"use only: {', '.join(allowed)}")

    # --- the file ---------------------------------------------------------------------------

    def document(self) -> Any:
        """The YAML document, or None after a problem: no YAML construct, value or depth of
        nesting can make loading a definitions file crash or run away."""
        if len(self.text) > MAX_FILE_CHARS:
            self.problem(1, f"the file is larger than {MAX_FILE_CHARS // 1024} KiB; a "
                            "definitions file is far smaller")
            return None
        if _flow_depth(self.text) > MAX_FLOW_DEPTH:  # ruamel's parser is quadratic in it
            self.problem(1, f"the file nests lists or mappings (`[`, `{{`) more than "
                            f"{MAX_FLOW_DEPTH} deep")
            return None
        try:
            for event in YAML(typ="rt").parse(self.text):
                if isinstance(event, AliasEvent):
                    self.problem(event.start_mark.line + 1,
                                 "anchors and aliases (`&` and `*`) are not allowed: write "
                                 "every value out, so the file reads the same to everyone")
                    return None
            return YAML(typ="rt").load(self.text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.problem((mark.line + 1) if mark else 1,
                         f"the file is not valid YAML: {exc.problem or exc.context}")
        except YAMLError as exc:  # e.g. a NUL byte: ruamel's reader refuses it
            self.problem(1, f"the file is not valid YAML: {str(exc).splitlines()[0][:200]}")
        except RecursionError:
            self.problem(1, "the file is nested too deeply to be read")
        except (ValueError, OverflowError) as exc:  # a date in year 0, a 5,000-digit number
            self.problem(1, f"a value in the file cannot be read: {str(exc)[:200]}")
        return None

    def load(self) -> Definitions | None:
        doc = self.document()
        if doc is None:
            return None
        if not isinstance(doc, dict):
            self.problem(1, "the file must be a YAML mapping with version, agreed_by, facts, "
                            "stages and so on")
            return None
        self.unknown_keys(doc, TOP_KEYS, "a definitions file")
        version = self.version(doc)
        effective = self.effective(doc)
        agreed_by = self.agreed_by(doc)
        self.props = self.properties(doc)
        facts = self.facts(doc)
        conditions = self.conditions(doc, facts)
        population = self.population(doc, facts, conditions)
        stages = self.stages(doc, facts, conditions)
        handoff = self.handoff(doc, stages)
        if self.problems:
            return None
        return Definitions(version=version, effective=effective, agreed_by=agreed_by, facts=facts,
                           conditions=conditions, population=population, stages=tuple(stages),
                           handoff=handoff, properties=self.props, path=self.path,
                           source_text=self.text)

    def version(self, doc: Any) -> int:
        if "version" not in doc:
            self.problem(1, "the file has no `version`: give it a positive whole number and raise "
                            "it on every change")
            return 0
        value = doc["version"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_VERSION:
            big = isinstance(value, int) and value.bit_length() > 128
            shown = "a number with dozens of digits" if big else repr(value)[:40]
            self.problem(self.key_line(doc, "version"),
                         f"`version` must be a whole number from 1 to {MAX_VERSION}, not {shown}")
            return 0
        return value

    def effective(self, doc: Any) -> int | None:
        if "effective" not in doc:
            return None
        value = doc["effective"]
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            self.problem(self.key_line(doc, "effective"),
                         f"`effective` must be a date written YYYY-MM-DD, not {value!r}")
            return None
        day = day_number(value)
        if not MIN_DAY <= day <= MAX_DAY:
            self.problem(self.key_line(doc, "effective"),
                         "`effective` must be a date from 1970-01-01 to 2199-12-31")
            return None
        return day

    def agreed_by(self, doc: Any) -> dict[str, str]:
        signed = doc.get("agreed_by")
        line = self.key_line(doc, "agreed_by")
        if signed is None:
            self.problem(1, "the file has no `agreed_by`: both teams must sign it, with "
                            "`agreed_by.marketing` and `agreed_by.sales`")
            return {}
        if not isinstance(signed, dict):
            self.problem(line, "`agreed_by` must name who signed for `marketing` and for `sales`")
            return {}
        self.unknown_keys(signed, ("marketing", "sales"), "`agreed_by`")
        result = {}
        for team in ("marketing", "sales"):
            name = signed.get(team)
            if not isinstance(name, str) or not name.strip():
                self.problem(line, f"both teams must sign: `agreed_by.{team}` is missing")
            else:
                result[team] = name.strip()
        return result

    # --- properties ---------------------------------------------------------------------------

    def properties(self, doc: Any) -> dict[str, Property]:
        section = doc.get("properties")
        if section is None:
            return {}
        line = self.key_line(doc, "properties")
        if not isinstance(section, dict):
            self.problem(line, "`properties` must be a mapping of property names")
            return {}
        if len(section) > MAX_PROPERTIES:
            self.problem(line, f"there are {len(section)} properties; at most {MAX_PROPERTIES} "
                               "are allowed")
            return {}
        found: dict[str, Property] = {}
        for name, body in section.items():
            item_line = self.key_line(section, name)
            if not self.valid_name(name, item_line, "property"):
                continue
            prop = self.property(str(name), body, item_line)
            if prop is None:
                self.broken.add(name)
            else:
                found[name] = prop
        return found

    def property(self, name: str, body: Any, line: int) -> Property | None:
        if not isinstance(body, dict):
            self.problem(line, f"property `{name}` must say its `type` and where it comes "
                               "`from`, e.g. `type: number` and `from: CRM`")
            return None
        self.unknown_keys(body, PROPERTY_KEYS, f"property `{name}`")
        ok = True
        kind = body.get("type")
        types = [t.value for t in PropertyType]
        if kind not in types:
            close = ex.closest(str(kind), types) if kind is not None else None
            hint = f" (did you mean {close}?)" if close else ""
            self.problem(self.key_line(body, "type", line),
                         f"property `{name}` needs a `type`: one of {', '.join(types)}{hint}")
            ok = False
        source = body.get("from")
        if source is None:
            self.problem(line, f"property `{name}` must say which system of record sets it: "
                               f"`from: CRM` (or WEB, OTHER)")
            ok = False
        elif source not in SOURCES:
            self.problem(self.key_line(body, "from", line),
                         f"property `{name}`: `from: {source}` is not a source; a property "
                         f"comes from {', '.join(SOURCES)}")
            ok = False
        attribute = body.get("attribute", name)
        if not isinstance(attribute, str) or not attribute or len(attribute.encode()) > 128:
            self.problem(self.key_line(body, "attribute", line),
                         f"property `{name}`: `attribute` must name an attributes key")
            ok = False
        elif attribute in SUBJECTIVE_FIELDS:
            self.problem(self.key_line(body, "attribute", line),
                         f"property `{name}` reads `{attribute}`, which is a team's opinion or "
                         "free text, not a value a system of record holds")
            ok = False
        values = self.property_values(name, kind, body, line)
        bounds = self.property_bounds(name, kind, body, line)
        if not ok or not isinstance(values, tuple | None) or bounds is None:
            return None
        return Property(name=name, type=PropertyType(kind), source=str(source),
                        attribute=str(attribute),
                        description=str(body.get("description") or ""),
                        values=values or None, min=bounds[0], max=bounds[1], line=line)

    def property_values(self, name: str, kind: object, body: Any, line: int
                        ) -> tuple[str, ...] | bool | None:
        """The values of a text property; None for other types; False after a problem."""
        values = body.get("values")
        where = self.key_line(body, "values", line)
        if kind != "text":
            if values is not None:
                self.problem(where, f"property `{name}`: only text properties list `values`")
                return False
            return None
        if not isinstance(values, list) or not values:
            self.problem(where, f"text property `{name}` must list every value it can take, "
                                "e.g. `values: [smb, mid_market, enterprise]`")
            return False
        if len(values) > MAX_PROPERTY_VALUES or not all(
                isinstance(v, str) and v and len(v) <= 64 and '"' not in v for v in values):
            self.problem(where, f"property `{name}`: `values` must be at most "
                                f"{MAX_PROPERTY_VALUES} texts of 1 to 64 characters, without "
                                "quotes")
            return False
        if len(set(values)) != len(values):
            self.problem(where, f"property `{name}` lists a value twice")
            return False
        return tuple(values)

    def property_bounds(self, name: str, kind: object, body: Any, line: int
                        ) -> tuple[float | None, float | None] | None:
        low, high = body.get("min"), body.get("max")
        if low is None and high is None:
            return None, None
        where = self.key_line(body, "min" if low is not None else "max", line)
        if kind != "number":
            self.problem(where, f"property `{name}`: only number properties have `min` and `max`")
            return None
        for bound in (low, high):
            if bound is not None and (isinstance(bound, bool) or not isinstance(
                    bound, int | float) or abs(bound) > 1e15):
                self.problem(where, f"property `{name}`: `min` and `max` must be numbers of at "
                                    "most 15 digits")
                return None
        if low is not None and high is not None and low > high:
            self.problem(where, f"property `{name}`: `min` is above `max`")
            return None
        return (None if low is None else float(low)), (None if high is None else float(high))

    # --- facts ------------------------------------------------------------------------------

    def facts(self, doc: Any) -> dict[str, Fact]:
        section = doc.get("facts")
        if section is None:
            return {}
        if not isinstance(section, dict):
            self.problem(self.key_line(doc, "facts"), "`facts` must be a mapping of fact names")
            return {}
        facts: dict[str, Fact] = {}
        if len(section) > MAX_FACTS:
            self.problem(self.key_line(doc, "facts"),
                         f"there are {len(section)} facts; at most {MAX_FACTS} are allowed")
            return {}
        for name, body in section.items():
            line = self.key_line(section, name)
            if not self.valid_name(name, line, "fact"):
                continue
            if name in self.props:
                self.problem(line, f"`{name}` is both a property and a fact; give them "
                                   "different names")
                continue
            fact = self.fact(str(name), body, line)
            if fact is not None:
                facts[name] = fact
            else:
                self.broken.add(name)
        return facts

    def valid_name(self, name: object, line: int, what: str) -> bool:
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
            self.problem(line, f"{what} name `{str(name)[:MAX_NAME_LENGTH]}` must be lower-case "
                               f"letters, digits and _, starting with a letter, at most "
                               f"{MAX_NAME_LENGTH} characters")
            return False
        if name in ex.KEYWORDS:
            self.problem(line, f"`{name}` is a word of the language and cannot name a {what}")
            return False
        return True

    def activity(self, fact: str, value: object, line: int) -> str | None:
        if not isinstance(value, str):
            self.problem(line, f"fact `{fact}`: {value!r} is not an activity name")
            return None
        if value not in self.catalog.activities:
            close = ex.closest(value.upper(), self.catalog.activities)
            hint = f" (did you mean {close}?)" if close else ""
            self.problem(line, f"fact `{fact}` reads `{value}`, which is not an activity in the "
                               f"event schema{hint}")
            return None
        if value in SUBJECTIVE_ACTIVITIES:
            self.problem(line, f"fact `{fact}` reads {value}, which is a team's opinion, not an "
                               "objective fact")
            return None
        if value in _NOT_FACTS:
            self.problem(line, f"fact `{fact}`: {_NOT_FACTS[value]}")
            return None
        return value

    def activities(self, fact: str, value: object, line: int) -> tuple[str, ...] | None:
        items = value if isinstance(value, list) else [value]
        if not items:
            self.problem(line, f"fact `{fact}` lists no activities")
            return None
        found = [self.activity(fact, item, line) for item in items]
        if any(a is None for a in found):
            return None
        if len(set(found)) != len(found):
            self.problem(line, f"fact `{fact}` lists an activity twice")
            return None
        return tuple(a for a in found if a)

    def fact(self, name: str, body: Any, line: int) -> Fact | None:
        if not isinstance(body, dict):
            self.problem(line, f"fact `{name}` must say what it measures, "
                               "e.g. `count: [CONTACTED]`")
            return None
        self.unknown_keys(body, ("description", *FACT_KINDS, "within"), f"fact `{name}`")
        kinds = [k for k in FACT_KINDS if k in body]
        if len(kinds) != 1:
            self.problem(line, f"fact `{name}` must use exactly one of {', '.join(FACT_KINDS)}"
                               + (f" (it uses {', '.join(kinds)})" if kinds else ""))
            return None
        kind = kinds[0]
        description = str(body.get("description") or "")
        within = None
        if "within" in body:
            if kind not in ("count", "sum", "max"):
                self.problem(self.key_line(body, "within"),
                             f"fact `{name}`: `within` only applies to `count`, `sum` and `max`")
                return None
            within = parse_duration(body["within"])
            if within is None or within.amount <= 0:
                self.problem(self.key_line(body, "within"),
                             f"fact `{name}`: `within` must be a duration such as `90 days`, "
                             f"not {body['within']!r}")
                return None
            too_long = within.months > MAX_WINDOW.months \
                or within.millis > MAX_WINDOW_DAYS * MS_PER_DAY
            if too_long:
                self.problem(self.key_line(body, "within"),
                             f"fact `{name}`: `within` can be at most {MAX_WINDOW} (12 months, "
                             f"52 weeks or {MAX_WINDOW_DAYS} days), because the worker keeps a "
                             "year of activity times per lead")
                return None
        value_line = self.key_line(body, kind, line)
        if kind in ("latest", "sum", "max"):
            fact = self.latest(name, body[kind], value_line, description, line, kind)
            if fact is not None and kind != "latest":
                if fact.type not in (Type.DECIMAL, Type.COUNT):
                    self.problem(value_line, f"fact `{name}`: `{kind}` needs a numeric field, and "
                                             f"`{fact.field}` is {fact.type.article}")
                    return None
                carriers = SUMMED.get(str(fact.field), ())
                if fact.activities[0] not in carriers:
                    self.problem(value_line, f"fact `{name}`: {fact.activities[0]} events carry no "
                                             f"{fact.field}; only {' and '.join(carriers)} do")
                    return None
                return Fact(name=name, kind=kind, activities=fact.activities, type=Type.DECIMAL,
                            description=description, within=within, field=fact.field,
                            line=line)
            return fact
        activities = self.activities(name, body[kind], value_line)
        if activities is None:
            return None
        fact_type = Type.COUNT if kind == "count" else Type.TIMESTAMP
        return Fact(name=name, kind=kind, activities=activities, type=fact_type,
                    description=description, within=within, line=line)

    def latest(self, name: str, value: object, line: int, description: str,
               fact_line: int, kind: str = "latest") -> Fact | None:
        if not isinstance(value, str) or value.count(".") != 1:
            example = "DECISION_TIMELINE_PROVIDED.decision_by" if kind == "latest" \
                else "BUDGET_CONFIRMED.amount"
            self.problem(line, f"fact `{name}`: `{kind}` needs ACTIVITY.field, e.g. "
                               f"`{example}`")
            return None
        activity_name, field = value.split(".")
        activity = self.activity(name, activity_name, line)
        if activity is None:
            return None
        field_kind = self.catalog.fields.get(field)
        if field_kind is None:
            self.problem(line, f"fact `{name}` reads `{field}`, which is not a field of "
                               "LeadActivity in the event schema")
            return None
        if field in SUBJECTIVE_FIELDS:
            self.problem(line, f"fact `{name}` reads `{field}`, which is a team's opinion or free "
                               "text, not an objective fact")
            return None
        if field in ENVELOPE_FIELDS:
            hint = f"; use `last: {activity}`" if field == "occurred_at" else ""
            self.problem(line, f"fact `{name}`: `{field}` is not a value an activity carries{hint}")
            return None
        types = {"date": Type.DATE, "decimal": Type.DECIMAL, "text": Type.TEXT,
                 "timestamp": Type.TIMESTAMP, "count": Type.COUNT}
        if field_kind not in types:
            self.problem(line, f"fact `{name}`: field `{field}` cannot be used in rules")
            return None
        return Fact(name=name, kind="latest", activities=(activity,), type=types[field_kind],
                    description=description, field=field, line=fact_line)

    # --- rules ------------------------------------------------------------------------------

    def rule(self, what: str, text: object, line: int, lookup: Any,
             known: list[str]) -> Rule | None:
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            self.problem(line, f"{what} must be an expression written as text")
            return None
        source = str(text).strip()
        try:
            tree = ex.parse(source)
        except ex.ExpressionError as exc:
            shown = source if len(source) <= 120 else f"{source[:120]}…"
            self.problem(line, f"{what}: {exc} (in `{shown}`, at column {exc.column})")
            return None
        if self.broken.intersection(ex.names_in(tree)):
            return None  # the broken name's own problem is reported already
        problems = ex.check(tree, lookup, known)
        for message in problems:
            self.problem(line, f"{what}: {message}")
        return None if problems else Rule(source=source, tree=tree, line=line)

    def lookup_for(self, facts: dict[str, Fact], conditions: dict[str, Rule]) -> Any:
        props = self.props

        def lookup(name: str) -> ex.NameInfo | None:
            if name in props:
                prop = props[name]
                return ex.NameInfo(prop.type.type, True, is_property=True, values=prop.values)
            if name in facts:
                return ex.NameInfo(facts[name].type, facts[name].nullable)
            if name in conditions:
                return ex.NameInfo(Type.BOOLEAN, False, is_condition=True)
            return None

        return lookup

    def conditions(self, doc: Any, facts: dict[str, Fact]) -> dict[str, Rule]:
        section = doc.get("conditions")
        if section is None:
            return {}
        if not isinstance(section, dict):
            self.problem(self.key_line(doc, "conditions"),
                         "`conditions` must be a mapping of names to expressions")
            return {}
        raw: dict[str, tuple[str, int]] = {}
        for name, text in section.items():
            line = self.key_line(section, name)
            if not self.valid_name(name, line, "condition"):
                continue
            if name in facts or name in self.props:
                self.problem(line, f"`{name}` is both a {'fact' if name in facts else 'property'} "
                                   "and a condition; give them different names")
                continue
            raw[name] = (text, line)
        known = [*self.props, *facts, *raw]
        # Check in dependency order so a condition may use conditions defined after it.
        order, cycles = _dependency_order(raw)
        self.broken.update(cycles)
        for name in cycles:
            self.problem(raw[name][1], f"condition `{name}` depends on itself through other "
                                       "conditions")
        done: dict[str, Rule] = {}
        for name in order:
            text, line = raw[name]
            rule = self.rule(f"condition `{name}`", text, line, self.lookup_for(facts, done), known)
            if rule is not None:
                done[name] = rule
            else:
                self.broken.add(name)
        return {name: done[name] for name in raw if name in done}

    def population(self, doc: Any, facts: dict[str, Fact], conditions: dict[str, Rule]
                   ) -> Rule | None:
        if "population" not in doc:
            return None
        return self.rule("population", doc["population"], self.key_line(doc, "population"),
                         self.lookup_for(facts, conditions), [*self.props, *facts, *conditions])

    def stages(self, doc: Any, facts: dict[str, Fact], conditions: dict[str, Rule]) -> list[Stage]:
        section = doc.get("stages")
        line = self.key_line(doc, "stages")
        if not section:
            self.problem(line, "there are no stages: list at least one, lowest first")
            return []
        if not isinstance(section, list):
            self.problem(line, "`stages` must be a list, lowest stage first")
            return []
        if len(section) > MAX_STAGES:
            self.problem(line, f"there are {len(section)} stages; at most {MAX_STAGES} are allowed")
            return []
        stages: list[Stage] = []
        seen: dict[str, int] = {}
        for item in section:
            item_line = self.line_of(item, line)
            if not isinstance(item, dict):
                self.problem(item_line, "each stage needs a name, a meaning and a `when` rule")
                continue
            self.unknown_keys(item, ("name", "meaning", "when"), "a stage")
            name = item.get("name")
            if not isinstance(name, str) or not _STAGE_NAME.match(name) \
                    or len(name) > MAX_NAME_LENGTH or name == "other":
                self.problem(item_line, f"stage name {str(name)[:MAX_NAME_LENGTH]!r} must be a "
                                        f"lower-case word of at most {MAX_NAME_LENGTH} characters "
                                        "(and not `other`, which metrics use for unknown stages)")
                continue
            if name in seen:
                self.problem(item_line, f"stage `{name}` is defined twice (first on line "
                                        f"{seen[name]})")
                continue
            seen[name] = item_line
            meaning = item.get("meaning")
            if not isinstance(meaning, str) or not meaning.strip():
                self.problem(item_line, f"stage `{name}` has no `meaning`: say in one sentence "
                                        "what it means")
            if "when" not in item:
                self.problem(item_line, f"stage `{name}` has no `when` rule")
                continue
            rule = self.rule(f"stage `{name}`", item["when"], self.key_line(item, "when",
                             item_line), self.lookup_for(facts, conditions),
                             [*self.props, *facts, *conditions])
            if rule is not None and isinstance(meaning, str):
                stages.append(Stage(name=name, meaning=meaning.strip(), when=rule, line=item_line))
        return stages

    def handoff(self, doc: Any, stages: list[Stage]) -> Handoff | None:
        section = doc.get("handoff")
        if section is None:
            return None
        line = self.key_line(doc, "handoff")
        if not isinstance(section, dict):
            self.problem(line, "`handoff` must give a `stage` and `follow_up_within`")
            return None
        self.unknown_keys(section, ("stage", "follow_up_within"), "`handoff`")
        stage = section.get("stage")
        if stage not in {s.name for s in stages} and stages:
            self.problem(self.key_line(section, "stage", line),
                         f"handoff stage `{stage}` is not one of the stages")
            return None
        within = parse_duration(section.get("follow_up_within"))
        if within is None or within.amount <= 0 or within.max_days > MAX_DURATION_DAYS:
            self.problem(self.key_line(section, "follow_up_within", line),
                         "`follow_up_within` must be a duration such as `2 days`, at most "
                         f"{MAX_OFFSET_YEARS} years")
            return None
        return Handoff(stage=str(stage), follow_up_within=within)


def _flow_depth(text: str) -> int:
    """How deep `[` and `{` nest, outside quotes and comments (a linear scan)."""
    deepest = depth = 0
    quote = ""
    comment = False
    previous = "\n"
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and previous in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        previous = ch
    return deepest


def _dependency_order(raw: dict[str, tuple[str, int]]) -> tuple[list[str], list[str]]:
    deps: dict[str, set[str]] = {}
    for name, (text, _line) in raw.items():
        try:
            deps[name] = {n for n in ex.names_in(ex.parse(str(text))) if n in raw}
        except ex.ExpressionError:
            deps[name] = set()
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cyclic: list[str] = []

    def visit(name: str) -> bool:
        if state.get(name) == 2:
            return True
        if state.get(name) == 1:
            return False
        state[name] = 1
        ok = all(visit(d) for d in sorted(deps[name]))
        state[name] = 2
        if ok:
            order.append(name)
        elif name not in cyclic:
            cyclic.append(name)
        return ok

    for name in raw:
        visit(name)
    return order, cyclic


def load_text(text: str, path: str = "<definitions>", catalog: Catalog | None = None
              ) -> Definitions:
    """Load definitions from YAML text; raise DefinitionsError listing every problem."""
    loader = _Loader(path, text, catalog or load_catalog())
    result = loader.load()
    if result is None:
        loader.problems.sort(key=lambda p: p.line)
        raise DefinitionsError(loader.problems or [Problem(path, 1, "the file cannot be loaded")])
    return result


def load_file(path: str | Path) -> Definitions:
    path = Path(path)
    try:
        with path.open("rb") as handle:  # read no more than the limit (/dev/zero never ends)
            data = handle.read(4 * MAX_FILE_CHARS + 1)
    except OSError as exc:
        raise DefinitionsError([Problem(str(path), 0, f"cannot read the file: "
                                                       f"{exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(data) <= 4 * MAX_FILE_CHARS or exc.start < 4 * MAX_FILE_CHARS - 3:
            raise DefinitionsError([Problem(str(path), 1, "the file is not UTF-8 text "
                                                          f"(byte {exc.start + 1})")]) from None
        text = data[:exc.start].decode("utf-8")  # cut inside a character at the limit
    return load_text(text, str(path))
