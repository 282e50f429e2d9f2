"""What `assembly.build` hands Faust from the settings (no Kafka is reached when building)."""

from __future__ import annotations

import asyncio
import re

import pytest

from streams.adapters.faust_settings import static_member_id
from streams.adapters.rocksdb_store import LeadRocksStore
from streams.adapters.settings import Settings
from streams.worker.assembly import build


def test_the_settings_reach_the_consumer(tmp_path):
    settings = Settings.from_env({"LEADSTAGE_DATA_DIR": str(tmp_path),
                                  "LEADSTAGE_WEB_PORT": "16123",
                                  "LEADSTAGE_INSTANCE_ID": "worker-7",
                                  "LEADSTAGE_MAX_POLL_RECORDS": "1234"})
    conf = build(settings).app.conf
    assert conf.broker_max_poll_records == 1234
    assert conf.consumer_group_instance_id == static_member_id(
        "worker-7", "http://127.0.0.1:16123")


def test_without_an_instance_id_membership_stays_dynamic(tmp_path, monkeypatch):
    monkeypatch.delenv("CONSUMER_GROUP_INSTANCE_ID", raising=False)  # Faust's own variable
    conf = build(Settings.from_env({"LEADSTAGE_DATA_DIR": str(tmp_path)})).app.conf
    assert conf.consumer_group_instance_id is None
    assert conf.broker_max_poll_records == 20_000


def kafka_consumer_of(app):
    """The aiokafka consumer Faust's consumer thread would start for this app."""
    async def create():
        thread = app.consumer._new_consumer_thread()
        return thread._create_worker_consumer(app.transport)
    return asyncio.run(create())


@pytest.mark.parametrize(("env", "expected"),
                         [({}, 20), ({"LEADSTAGE_FETCH_MAX_WAIT_MS": "35"}, 35)])
def test_the_fetch_wait_reaches_the_kafka_consumer_instead_of_fausts(tmp_path, env, expected):
    # Faust passes fetch_max_wait_ms=1500; the worker's consumer must wait env's (or 20) ms.
    app = build(Settings.from_env({"LEADSTAGE_DATA_DIR": str(tmp_path), **env})).app
    consumer = kafka_consumer_of(app)
    assert consumer._fetch_max_wait_ms == expected


def rocksdb_options_file(store: LeadRocksStore, partition: int) -> str:
    """The options RocksDB itself says a partition's database was opened with."""
    db = store._db_for_partition(partition)
    db.close()
    folder = store.partition_path(partition)
    return max(folder.glob("OPTIONS-*")).read_text()


@pytest.mark.parametrize(("env", "expected"), [({}, "kNoCompression"),
                                               ({"LEADSTAGE_STATE_COMPRESSION": "lz4"},
                                                "kLZ4Compression")])
def test_the_lead_tables_rocksdb_gets_the_compression_and_compaction_trigger(
        tmp_path, env, expected):
    # Faust's own store would leave RocksDB's defaults: Snappy, and 4 files in level 0.
    table = build(Settings.from_env({"LEADSTAGE_DATA_DIR": str(tmp_path), **env})).table
    store = table.data
    assert isinstance(store, LeadRocksStore)
    written = rocksdb_options_file(store, 3)
    assert re.search(rf"^\s*compression={expected}$", written, re.M)
    assert re.search(r"^\s*level0_file_num_compaction_trigger=8$", written, re.M)
    assert re.search(r"^\s*write_buffer_size=4194304$", written, re.M)  # Faust's options too


@pytest.mark.parametrize(("env", "expected"), [({}, str(64 * 2**20)),
                                               ({"LEADSTAGE_CHANGELOG_SEGMENT_BYTES": "2097152"},
                                                "2097152")])
def test_the_changelog_topic_is_declared_with_the_segment_size(tmp_path, env, expected):
    # Faust creates the changelog with this config (Kafka's own default would be 1 GiB).
    table = build(Settings.from_env({"LEADSTAGE_DATA_DIR": str(tmp_path), **env})).table
    assert table.changelog_topic.config["segment.bytes"] == expected
    assert table.changelog_topic.compacting
