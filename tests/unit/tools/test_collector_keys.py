"""Collector keys: secrets printed once and stored as hashes only; lookups compare every hash."""

from __future__ import annotations

import stat

import pytest

from streams.tools.collector.keys import (
    KeysError,
    WatchedKeys,
    add_key,
    digest,
    load_keys,
    remove_key,
)


def test_a_new_key_is_found_by_its_secret_and_only_its_hash_is_stored(tmp_path):
    path = tmp_path / "keys.yaml"
    secret = add_key(path, "website", "WEB", "browser", ["https://WWW.Example.com/"])
    other = add_key(path, "crm", "CRM", "server", [])
    text = path.read_text()
    assert secret not in text and secret[4:] not in text
    assert digest(secret) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_keys(path)
    found = ring.find(secret)
    assert found is not None and (found.id, found.kind, found.source) == (
        "website", "browser", "WEB")
    assert found.origins == {"https://www.example.com"}
    assert ring.find(other).id == "crm"
    assert ring.find(secret + "x") is None and ring.find("") is None
    assert ring.origins == {"https://www.example.com"}
    assert secret.startswith("lsk_") and len(secret) > 40


@pytest.mark.parametrize(("args", "message"), [
    (("web site", "WEB", "server", []), "--id"),
    (("site", "WEB", "browser", []), "needs --origin"),
    (("site", "WEB", "server", ["https://a.example"]), "for browser keys"),
    (("site", "WEB", "browser", ["ftp://a.example"]), "not an origin"),
    (("site", "WEB", "browser", ["https://a.example/path"]), "not an origin"),
    (("site", "WEB", "browser", ["https://user@a.example"]), "not an origin"),
])
def test_bad_keys_are_refused(tmp_path, args, message):
    with pytest.raises(KeysError, match=message):
        add_key(tmp_path / "keys.yaml", *args)
    assert not (tmp_path / "keys.yaml").exists()


def test_a_duplicate_id_and_a_broken_file_are_refused(tmp_path):
    path = tmp_path / "keys.yaml"
    add_key(path, "site", "WEB", "server", [])
    with pytest.raises(KeysError, match="exists"):
        add_key(path, "site", "WEB", "server", [])
    path.write_text("keys:\n  - {id: x, sha256: nothex, source: WEB, kind: server}\n")
    with pytest.raises(KeysError, match="sha256"):
        load_keys(path)
    path.write_text("keys: [1, 2]\n")
    with pytest.raises(KeysError, match="list of keys"):
        load_keys(path)
    path.write_text("keys:\n  - {id: x, sha256: '" + "0" * 64 + "', source: WEB, kind: browser}\n")
    with pytest.raises(KeysError, match="at least one origin"):
        load_keys(path)


def test_no_file_is_no_keys(tmp_path):
    assert load_keys(tmp_path / "absent.yaml").keys == ()


def test_remove_revokes_and_a_watched_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "keys.yaml"
    first = add_key(path, "first", "WEB", "server", [])
    errors: list[str] = []
    watched = WatchedKeys(path, errors.append)
    assert watched.current().find(first) is not None
    second = add_key(path, "second", "CRM", "server", [])
    remove_key(path, "first")
    watched._checked -= 2  # a second has passed
    ring = watched.current()
    assert ring.find(first) is None and ring.find(second).id == "second"
    with pytest.raises(KeysError, match="no key"):
        remove_key(path, "first")
    path.write_text("keys: [broken")  # a bad edit keeps the last good keys, loudly
    watched._checked -= 2
    assert watched.current().find(second) is not None
    assert errors and "keeping the previous keys" in errors[0]
