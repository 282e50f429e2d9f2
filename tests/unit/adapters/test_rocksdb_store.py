"""The lead table's RocksDB options, on a real database (rocksdict): what RocksDB itself records
it was opened with, and how much a flushed file takes with and without compression."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rocksdict import Rdict

from streams.adapters.rocksdb_store import LeadRocksDBOptions
from streams.adapters.settings import STATE_COMPRESSIONS


def flushed(folder: Path, **options: object) -> tuple[int, str]:
    """Bytes of table files after writing 2,000 alike states and flushing, and the OPTIONS file."""
    db = Rdict(str(folder), options=LeadRocksDBOptions(**options).as_options())
    for i in range(2_000):
        db[f"lead-{i:05d}".encode()] = b'{"stage":"warm","facts":{"visits":3}}' * 20
    db.flush()
    db.close()
    size = sum(f.stat().st_size for f in folder.glob("*.sst"))
    return size, max(folder.glob("OPTIONS-*")).read_text()


def test_states_are_stored_uncompressed_unless_a_compression_is_named(tmp_path):
    plain, recorded = flushed(tmp_path / "none")
    assert re.search(r"^\s*compression=kNoCompression$", recorded, re.M)
    assert re.search(r"^\s*level0_file_num_compaction_trigger=8$", recorded, re.M)
    assert plain > 2_000 * 760  # every state's bytes are on disk as they are
    for name in STATE_COMPRESSIONS[1:]:
        size, _ = flushed(tmp_path / name, compression=name)
        assert size < plain / 4, name


@pytest.mark.parametrize("name", ["gzip", "bz2", "", "NONE"])
def test_a_compression_outside_the_settings_choices_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="state compression must be one of none, lz4, snappy, "
                                         "zstd"):
        LeadRocksDBOptions(compression=name).as_options()
