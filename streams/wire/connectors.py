"""Webhook connectors (DESIGN §9): how `connectors/{name}.yaml` says to verify a sender and to
turn its payload into LeadActivity events in the JSON-lines form of `produce`.

A connector file has three parts:

    verify:                      # who may call: an HMAC over a template of the request
      algorithm: sha256          # sha256 or sha1 (Segment's webhook destinations sign with SHA-1)
      encoding: base64           # base64 or hex
      secret_env: LEADSTAGE_HUBSPOT_CLIENT_SECRET
      signature_header: X-HubSpot-Signature-v3
      signed: "{method}{url}{body}{timestamp}"
      timestamp_header: X-HubSpot-Request-Timestamp   # optional, with tolerance_seconds
      timestamp_unit: ms         # ms or s
      tolerance_seconds: 300
      url_unquote: ":/?@!$'()*,;"  # characters the sender decodes in the URL before signing
    source: CRM
    items: $                     # where the items are: $ (the body; an object is one item) or
                                 # a dotted path to a list
    rules:                       # the first rule whose `when` matches an item maps it
      - when: {subscriptionType: contact.creation}
        event: {event_id: "hubspot-{eventId}", lead_id: "hubspot-{objectId}",
                occurred_at: "{occurredAt}", activity: CONTACTED}
        attributes: {"{propertyName}": "{propertyValue}"}

Templates are text with `{path}` placeholders (dotted paths into the item, `a|b` for the first
present); a template that is exactly one placeholder keeps the value's JSON type (a number stays
a number). `activity` may be `{lookup: "{event}", table: {"Demo Requested": DEMO_REQUESTED}}`.
Items that no rule matches, or whose lookup has no entry, are ignored and counted, not
dead-lettered: a CRM sends far more kinds of change than lead stages need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streams.core.catalog import load_catalog

ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
ENCODINGS = ("base64", "hex")
SIGNED_FIELDS = frozenset({"method", "url", "body", "timestamp"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
EVENT_FIELDS = ("event_id", "lead_id", "occurred_at", "activity", "source", "decision_by",
                "amount", "currency")
REQUIRED_EVENT_FIELDS = ("event_id", "lead_id", "occurred_at", "activity")
#: The most items one webhook request may carry (the limit of POST /v1/events).
MAX_ITEMS = 1000


class ConnectorError(ValueError):
    """A connector file that cannot be used; the message names the file and the problem."""


class Unverified(Exception):
    """A request that does not prove it comes from the connector's sender (answered 401)."""


def connector_name_ok(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _lookup(item: Any, path: str) -> Any:
    """The value at a dotted path, or None; `a|b` is the first of them present."""
    for alternative in path.split("|"):
        value = item
        for part in alternative.strip().split("."):
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = None
            if value is None:
                break
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Template:
    source: str
    #: the path when the template is exactly one placeholder (the value keeps its type)
    whole: str | None

    @classmethod
    def parse(cls, text: object, where: str) -> Template:
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise ConnectorError(f"{where}: a template must be text, not {type(text).__name__}")
        source = str(text)
        match = _PLACEHOLDER.fullmatch(source)
        return cls(source, match.group(1) if match else None)

    def render(self, item: Any) -> Any:
        """The value for `item`; None when a placeholder has no value."""
        if self.whole is not None:
            return _lookup(item, self.whole)
        missing = False

        def fill(match: re.Match[str]) -> str:
            nonlocal missing
            value = _lookup(item, match.group(1))
            if value is None or isinstance(value, dict | list):
                missing = True
                return ""
            return _text(value)

        out = _PLACEHOLDER.sub(fill, self.source)
        return None if missing else out


@dataclass(frozen=True)
class Lookup:
    key: Template
    table: Mapping[str, str]

    def render(self, item: Any) -> str | None:
        value = self.key.render(item)
        return None if value is None else self.table.get(_text(value))


@dataclass(frozen=True)
class Rule:
    #: field path -> accepted values (any of them)
    when: Mapping[str, frozenset[str]]
    event: Mapping[str, Template | Lookup]
    attributes: tuple[tuple[Template, Template], ...]

    def matches(self, item: Any) -> bool:
        for path, accepted in self.when.items():
            value = _lookup(item, path)
            if value is None or _text(value) not in accepted:
                return False
        return True


@dataclass(frozen=True)
class Mapped:
    """One item of a payload: an event, or why it was left out (`ignored`: no rule or no
    table entry for it; `problem`: it matched but a required field is missing)."""

    index: int
    event: dict[str, Any] | None = None
    ignored: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class Verification:
    algorithm: str
    encoding: str
    secret_env: str
    signature_header: str
    signed: str
    signature_prefix: str = ""
    timestamp_header: str | None = None
    timestamp_unit: str = "ms"
    tolerance_seconds: int = 300
    url_unquote: str = ""

    def signing_url(self, url: str) -> str:
        for char in self.url_unquote:
            escaped = f"%{ord(char):02X}"
            url = url.replace(escaped, char).replace(escaped.lower(), char)
        return url

    def check(self, secret: bytes, method: str, url: str, body: bytes,
              headers: Mapping[str, str], now_ms: int) -> None:
        """Raise Unverified unless the request carries a good signature (and a fresh
        timestamp, when the connector has one)."""
        given = headers.get(self.signature_header)
        if not given:
            raise Unverified(f"missing {self.signature_header} header")
        timestamp = ""
        if self.timestamp_header is not None:
            timestamp = headers.get(self.timestamp_header, "")
            if not timestamp.isdigit() or len(timestamp) > 16:
                raise Unverified(f"missing or malformed {self.timestamp_header} header")
            sent_ms = int(timestamp) * (1000 if self.timestamp_unit == "s" else 1)
            if abs(now_ms - sent_ms) > self.tolerance_seconds * 1000:
                raise Unverified(f"{self.timestamp_header} is more than "
                                 f"{self.tolerance_seconds} s away from now")
        parts = {"method": method.encode(), "url": self.signing_url(url).encode(),
                 "body": body, "timestamp": timestamp.encode()}
        message = b"".join(parts[text] if placeholder else text.encode()
                           for placeholder, text in _split_signed(self.signed))
        digest = hmac.new(secret, message, ALGORITHMS[self.algorithm]).digest()
        expected = (base64.b64encode(digest).decode() if self.encoding == "base64"
                    else digest.hex())
        given = given.strip()
        if self.signature_prefix and given.startswith(self.signature_prefix):
            given = given[len(self.signature_prefix):]
        if not hmac.compare_digest(expected.encode(), given.encode(errors="replace")):
            raise Unverified(f"the {self.signature_header} signature does not match")


def _split_signed(template: str) -> list[tuple[bool, str]]:
    """`{timestamp}.{body}` -> [(True, "timestamp"), (False, "."), (True, "body")]: placeholders
    and the literal text between them, told apart (a literal "body" is not the body)."""
    out: list[tuple[bool, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            out.append((False, template[position:match.start()]))
        out.append((True, match.group(1)))
        position = match.end()
    if position < len(template):
        out.append((False, template[position:]))
    return out


@dataclass(frozen=True)
class Connector:
    name: str
    verification: Verification
    source: str
    items: str
    rules: tuple[Rule, ...]

    def items_of(self, payload: Any) -> list[Any]:
        """The items of a payload; ConnectorError-free: anything else is no items."""
        found = payload if self.items == "$" else _lookup(payload, self.items)
        if isinstance(found, list):
            return found
        return [found] if isinstance(found, Mapping) else []

    def map(self, payload: Any) -> Iterator[Mapped]:
        for index, item in enumerate(self.items_of(payload)):
            yield self.map_item(index, item)

    def map_item(self, index: int, item: Any) -> Mapped:
        if not isinstance(item, Mapping):
            return Mapped(index, problem="an item is not a JSON object")
        rule = next((r for r in self.rules if r.matches(item)), None)
        if rule is None:
            return Mapped(index, ignored=True)
        event: dict[str, Any] = {"source": self.source}
        for name, template in rule.event.items():
            value = template.render(item)
            if value is None:
                if isinstance(template, Lookup):
                    return Mapped(index, ignored=True)
                if name in REQUIRED_EVENT_FIELDS:
                    return Mapped(index, problem=f"no value for {name} ({template.source})")
                continue
            event[name] = value
        if isinstance(event.get("event_id"), int | float):
            event["event_id"] = _text(event["event_id"])
        if isinstance(event.get("lead_id"), int | float):
            event["lead_id"] = _text(event["lead_id"])
        attributes: dict[str, str] = {}
        for key_template, value_template in rule.attributes:
            key, value = key_template.render(item), value_template.render(item)
            if key is not None and value is not None and not isinstance(value, dict | list):
                attributes[_text(key)] = _text(value)
        if attributes:
            event["attributes"] = attributes
        return Mapped(index, event=event)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConnectorError(f"{where} must be a mapping")
    return value


def _verification(raw: object, where: str) -> Verification:
    spec = _mapping(raw, where)
    known = {"algorithm", "encoding", "secret_env", "signature_header", "signed",
             "signature_prefix", "timestamp_header", "timestamp_unit", "tolerance_seconds",
             "url_unquote"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConnectorError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for name in ("algorithm", "encoding", "secret_env", "signature_header", "signed"):
        if not isinstance(spec.get(name), str) or not spec[name]:
            raise ConnectorError(f"{where}.{name} is required (text)")
    if spec["algorithm"] not in ALGORITHMS:
        raise ConnectorError(f"{where}.algorithm must be one of {', '.join(ALGORITHMS)}")
    if spec["encoding"] not in ENCODINGS:
        raise ConnectorError(f"{where}.encoding must be one of {', '.join(ENCODINGS)}")
    parts = _split_signed(spec["signed"])
    unknown_fields = sorted(t for placeholder, t in parts
                            if placeholder and t not in SIGNED_FIELDS)
    if unknown_fields:
        fields_known = ", ".join(sorted(SIGNED_FIELDS))
        raise ConnectorError(f"{where}.signed: unknown placeholder(s) "
                             f"{', '.join(unknown_fields)} (known: {fields_known})")
    fields = {t for placeholder, t in parts if placeholder}
    if "body" not in fields:
        raise ConnectorError(f"{where}.signed must include {{body}}: a signature that does not "
                             "cover the body proves nothing about the events")
    timestamp_header = spec.get("timestamp_header")
    if ("timestamp" in fields) != (timestamp_header is not None):
        raise ConnectorError(f"{where}: {{timestamp}} in signed and timestamp_header go "
                             "together")
    unit = spec.get("timestamp_unit", "ms")
    if unit not in ("ms", "s"):
        raise ConnectorError(f"{where}.timestamp_unit must be ms or s")
    tolerance = spec.get("tolerance_seconds", 300)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 1 <= tolerance \
            <= 3600:
        raise ConnectorError(f"{where}.tolerance_seconds must be 1 to 3600")
    return Verification(
        algorithm=spec["algorithm"], encoding=spec["encoding"], secret_env=spec["secret_env"],
        signature_header=spec["signature_header"], signed=spec["signed"],
        signature_prefix=str(spec.get("signature_prefix") or ""),
        timestamp_header=None if timestamp_header is None else str(timestamp_header),
        timestamp_unit=unit, tolerance_seconds=tolerance,
        url_unquote=str(spec.get("url_unquote") or ""))


def _rule(raw: object, where: str, activities: frozenset[str]) -> Rule:
    spec = _mapping(raw, where)
    unknown = sorted(set(spec) - {"when", "event", "attributes"})
    if unknown:
        raise ConnectorError(f"{where}: unknown key(s) {', '.join(unknown)}")
    when: dict[str, frozenset[str]] = {}
    for path, accepted in _mapping(spec.get("when", {}), f"{where}.when").items():
        values = accepted if isinstance(accepted, list) else [accepted]
        when[str(path)] = frozenset(_text(v) for v in values)
    event_spec = _mapping(spec.get("event"), f"{where}.event")
    unknown = sorted(set(event_spec) - set(EVENT_FIELDS))
    if unknown:
        raise ConnectorError(f"{where}.event: unknown field(s) {', '.join(unknown)} (fields: "
                             f"{', '.join(EVENT_FIELDS)})")
    missing = [name for name in REQUIRED_EVENT_FIELDS if name not in event_spec]
    if missing:
        raise ConnectorError(f"{where}.event needs {', '.join(missing)}")
    event: dict[str, Template | Lookup] = {}
    for name, value in event_spec.items():
        if name == "activity" and isinstance(value, Mapping):
            table = _mapping(value.get("table"), f"{where}.event.activity.table")
            bad = sorted(str(a) for a in table.values() if a not in activities)
            if bad:
                raise ConnectorError(f"{where}.event.activity.table: unknown activit"
                                     f"{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)}")
            event[name] = Lookup(Template.parse(value.get("lookup"),
                                                f"{where}.event.activity.lookup"),
                                 {str(k): str(v) for k, v in table.items()})
            continue
        if name == "activity" and value not in activities:
            raise ConnectorError(f"{where}.event.activity: unknown activity {value!r}")
        event[name] = Template.parse(value, f"{where}.event.{name}")
    attributes = tuple(
        (Template.parse(k, f"{where}.attributes"), Template.parse(v, f"{where}.attributes"))
        for k, v in _mapping(spec.get("attributes", {}), f"{where}.attributes").items())
    return Rule(when, event, attributes)


def load_connector(path: Path) -> Connector:
    name = path.stem
    if not connector_name_ok(name):
        raise ConnectorError(f"{path.name}: a connector name is 1 to 64 of a-z, 0-9, _ and -, "
                             "starting with a letter")
    try:
        raw = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise ConnectorError(f"{path.name}: cannot read: {exc}") from None
    spec = _mapping(raw, path.name)
    unknown = sorted(set(spec) - {"verify", "source", "items", "rules"})
    if unknown:
        raise ConnectorError(f"{path.name}: unknown key(s) {', '.join(unknown)}")
    source = spec.get("source", "OTHER")
    if source not in ("WEB", "CRM", "OTHER"):
        raise ConnectorError(f"{path.name}: source must be WEB, CRM or OTHER")
    rules_raw = spec.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ConnectorError(f"{path.name}: rules must be a non-empty list")
    activities = frozenset(load_catalog().activities) - {"UNKNOWN"}
    rules = tuple(_rule(r, f"{path.name}: rules[{i}]", activities)
                  for i, r in enumerate(rules_raw))
    return Connector(name, _verification(spec.get("verify"), f"{path.name}: verify"), source,
                     str(spec.get("items", "$")), rules)


def load_connectors(folder: Path) -> dict[str, Connector]:
    """Every `*.yaml` connector in `folder`, by name; ConnectorError for the first bad one."""
    if not folder.is_dir():
        return {}
    return {c.name: c for c in (load_connector(p) for p in sorted(folder.glob("*.yaml")))}
