"""Collector keys (DESIGN §9): a YAML file of `{id, sha256, source, kind, origins}`.

Secrets are stored only as SHA-256 hashes and printed once, by `leadstage collect key add`;
`key remove` revokes one (a running collector reads the file again when it changes). A
presented secret is hashed and compared with every stored hash in constant time, so neither the
answer nor its timing says how close a guess was. A browser key is publishable: it can only
write events of its source, from its origins.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streams.adapters.settings import origin

KINDS = ("server", "browser")
SOURCES = ("WEB", "CRM", "OTHER")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: secrets look like this, so that a leaked one is recognisable (and scanners can find it)
PREFIX = "lsk_"


class KeysError(ValueError):
    """A keys file that cannot be used, or a key that cannot be added."""


@dataclass(frozen=True)
class CollectKey:
    id: str
    sha256: str
    source: str
    kind: str
    origins: frozenset[str] = frozenset()

    @property
    def browser(self) -> bool:
        return self.kind == "browser"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


class KeyRing:
    def __init__(self, keys: list[CollectKey]) -> None:
        self.keys = tuple(keys)
        self._digests = [(bytes.fromhex(k.sha256), k) for k in self.keys]
        #: every origin a browser key may be used from (CORS preflight answers these)
        self.origins = frozenset(o for k in self.keys if k.browser for o in k.origins)

    def find(self, secret: str) -> CollectKey | None:
        """The key whose secret this is, or None. Every stored hash is compared, always."""
        presented = bytes.fromhex(digest(secret))
        found = None
        for stored, key in self._digests:
            if hmac.compare_digest(stored, presented):
                found = key
        return found


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def _entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    try:
        raw = _yaml().load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise KeysError(f"{path}: cannot read the keys file: {exc}") from None
    raw = raw or {}
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KeysError(f"{path}: expected `keys:` with a list of keys")
    return entries


def load_keys(path: Path) -> KeyRing:
    return _ring(path, _entries(path))


def _ring(path: Path, entries: list[dict[str, object]]) -> KeyRing:
    keys = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{path}: keys[{i}]"
        key_id, sha, source, kind = (entry.get(n) for n in ("id", "sha256", "source", "kind"))
        if not isinstance(key_id, str) or not _ID.fullmatch(key_id):
            raise KeysError(f"{where}: id must be 1 to 64 letters, digits, _ . -")
        if key_id in seen:
            raise KeysError(f"{where}: id {key_id!r} appears twice")
        seen.add(key_id)
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise KeysError(f"{where}: sha256 must be 64 lowercase hex digits")
        if source not in SOURCES:
            raise KeysError(f"{where}: source must be one of {', '.join(SOURCES)}")
        if kind not in KINDS:
            raise KeysError(f"{where}: kind must be server or browser")
        raw_origins = entry.get("origins") or []
        if not isinstance(raw_origins, list):
            raise KeysError(f"{where}: origins must be a list")
        try:
            origins = frozenset(origin(str(o)) for o in raw_origins)
        except ValueError as exc:
            raise KeysError(f"{where}: {exc}") from None
        if kind == "browser" and not origins:
            raise KeysError(f"{where}: a browser key needs at least one origin")
        keys.append(CollectKey(key_id, sha, str(source), str(kind), origins))
    return KeyRing(keys)


def _write(path: Path, entries: list[dict[str, object]]) -> None:
    """Replace the file at once (a reader sees the old list or the new one), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("# leadstage collect keys: hashes only; secrets were printed once.\n")
        _yaml().dump({"keys": entries}, handle)
    os.replace(partial, path)


def remove_key(path: Path, key_id: str) -> None:
    """Revoke a key: a running collector stops accepting it within a second."""
    entries = _entries(path)
    kept = [e for e in entries if e.get("id") != key_id]
    if len(kept) == len(entries):
        raise KeysError(f"no key with id {key_id!r} in {path}")
    _write(path, kept)


def add_key(path: Path, key_id: str, source: str, kind: str, origins: list[str]) -> str:
    """Append a key to the file (created with mode 0600) and return its secret, which is not
    stored anywhere."""
    if not _ID.fullmatch(key_id):
        raise KeysError("--id must be 1 to 64 letters, digits, _ . -")
    if kind == "browser" and not origins:
        raise KeysError("a browser key needs --origin (the site that may use it)")
    if kind == "server" and origins:
        raise KeysError("--origin is for browser keys; a server key is never used from a page")
    try:
        canonical = sorted({origin(o) for o in origins})
    except ValueError as exc:
        raise KeysError(str(exc)) from None
    entries = _entries(path)
    _ring(path, entries)  # refuse to add to a file that is already broken
    if any(e.get("id") == key_id for e in entries):
        raise KeysError(f"a key with id {key_id!r} exists in {path}")
    secret = PREFIX + secrets.token_urlsafe(32)
    entry: dict[str, object] = {"id": key_id, "sha256": digest(secret), "source": source,
                                "kind": kind}
    if canonical:
        entry["origins"] = canonical
    entries.append(entry)
    _write(path, entries)
    return secret


class WatchedKeys:
    """The keys of a file, read again when the file changes (checked at most once a second),
    so keys are added and revoked without a restart. A file that became unreadable keeps the
    last good keys, with an error in the log."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        self.path = path
        self.on_error = on_error
        self._stamp = self._stat()
        self.ring = load_keys(path)
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def current(self) -> KeyRing:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.ring = load_keys(self.path)
                except KeysError as exc:
                    self.on_error(f"keeping the previous keys: {exc}")
        return self.ring
