"""LeadStore on real RocksDB (rocksdict): states and the persisted changelog offset that tells
Faust's recovery where to resume are written together, per partition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict

from streams.adapters.lead_store import WATERMARK_KEY, LeadStore
from streams.core.lead_state import LeadState, dumps

OFFSET_KEY = b"__faust\x00offset__"


class FakeFaustStore:
    """The two things LeadStore uses of Faust's RocksDB store."""

    offset_key = OFFSET_KEY

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dbs: dict[int, Rdict] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self._dbs:
            self._dbs[partition] = Rdict(str(self.root / str(partition)),
                                         Options(raw_mode=True))
        return self._dbs[partition]


class FakeTable:
    def __init__(self, root: Path) -> None:
        self.data = FakeFaustStore(root)


def test_states_and_persisted_offsets_land_in_their_partitions(tmp_path: Path) -> None:
    store = LeadStore(FakeTable(tmp_path))
    a, b, c = LeadState("A", sequence=1), LeadState("B", sequence=2), LeadState("C")
    store.put_local_many([(0, "A", dumps(a)), (3, "B", dumps(b)), (0, "C", dumps(c))],
                         {0: 41, 3: 7, 5: 99})
    assert store.get(0, "A") == a and store.get(3, "B") == b and store.get(0, "C") == c
    assert store.get(3, "A") is None
    db: Any = store._db
    assert db(0)[OFFSET_KEY] == b"41" and db(3)[OFFSET_KEY] == b"7"
    assert db(5)[OFFSET_KEY] == b"99"  # an offset alone (only a watermark was written)
    store.put_watermark_local(0, b"123")
    assert store.watermark(0) == 123
    assert sorted(lead for lead, _ in store.raw_items(0)) == [b"A", b"C"]  # no offset, no watermark
    assert WATERMARK_KEY.startswith(b"\x00")
