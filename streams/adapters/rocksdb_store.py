"""The lead table's RocksDB store and all its options: Faust's own store, with two settings Faust
does not pass on to RocksDB, both about how much CPU the store's background compactions take.

- **Compression.** Faust leaves RocksDB's default, Snappy. Each state is rewritten every few
  seconds on a busy stream, so the same bytes are compressed again at every flush and every
  compaction, and decompressed at every read; without compression the background threads took
  about a third of the CPU for about three times the disk (bench/README.md). Kafka Streams' stores
  make the same choice; `LEADSTAGE_STATE_COMPRESSION` picks another where disk is scarcer.
- **Files in level 0 before they are compacted**, 8 instead of RocksDB's 4. A partition's
  database is small enough that level 0 compacts straight into the last level, so every such
  compaction rewrites the whole database: waiting for twice the files halves how often it does.
  The extra files cost a read little, as the bloom filters skip the files without the key.
"""

from __future__ import annotations

from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions, Store
from rocksdict import DBCompressionType

from streams.adapters.settings import STATE_COMPRESSIONS

#: The URL that names this store to Faust (the app's `store` setting, adapters.faust_settings).
STORE_URL = "leadstage-rocksdb://"
LEVEL0_COMPACTION_TRIGGER = 8
# Faust's RocksDB defaults (large write buffers and block cache) are per partition database, so
# memory grows with partitions; these keep a worker of 8 partitions under its memory target.
# Bloom filters of 10 bits per key (RocksDB's usual; Faust's 3 let about a third of the files
# that lack a key be read for it): every lead a batch touches is read first, a fifth of them new.
ROCKSDB_OPTIONS = {"write_buffer_size": 4 * 2**20, "max_write_buffer_number": 2,
                   "target_file_size_base": 16 * 2**20, "block_cache_size": 4 * 2**20,
                   "bloom_filter_size": 10}

_COMPRESSION = {name: getattr(DBCompressionType, name) for name in STATE_COMPRESSIONS}


class LeadRocksDBOptions(RocksDBOptions):
    """Faust's options, and `compression` (a name of STATE_COMPRESSIONS) and
    `level0_compaction_trigger`, which Faust keeps in `extra_options` unused."""

    def as_options(self) -> Any:
        options = super().as_options()
        compression = self.extra_options.get("compression", "none")
        if compression not in _COMPRESSION:
            raise ValueError(f"state compression must be one of {', '.join(STATE_COMPRESSIONS)}, "
                             f"not {compression!r}")
        options.set_compression_type(_COMPRESSION[compression]())
        options.set_level_zero_file_num_compaction_trigger(
            int(self.extra_options.get("level0_compaction_trigger", LEVEL0_COMPACTION_TRIGGER)))
        return options


def table_options(compression: str) -> dict[str, Any]:
    """The lead table's `options`, as Faust hands them to its store."""
    return {**ROCKSDB_OPTIONS, "compression": compression}


class LeadRocksStore(Store):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_rocksdict:
            raise RuntimeError("the lead table needs rocksdict (python-rocksdb is not supported)")
        # Faust's __init__ has taken read_only and driver out of self.options by now.
        self.rocksdb_options = LeadRocksDBOptions(**(self.options or {}), use_rocksdict=True)


STORES.aliases[STORE_URL.split(":", 1)[0]] = f"{__name__}:LeadRocksStore"
