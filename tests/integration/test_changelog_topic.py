"""The worker's internal topics against the real broker: created with the others before Faust
starts (prepare_topics, as the worker and `leadstage topics` call it), the leads changelog with
its segment size; one that exists keeps its own, so a worker finds out at start, and says how to
change it, when it was made with another (README "Configuration",
LEADSTAGE_CHANGELOG_SEGMENT_BYTES)."""

from __future__ import annotations

import os
import subprocess
import time

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.adapters.settings import Settings
from streams.adapters.topics import prepare_topics
from tests.integration.kafka_helpers import create_topics
from tests.integration.worker_harness import LEADSTAGE, worker_env


def settings_for(bootstrap: str, app_id: str, **env: str) -> Settings:
    """The app's own topics too, so preparing them creates nothing other tests use."""
    return Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LEADSTAGE_APP_ID": app_id,
                              **{f"LEADSTAGE_TOPIC_{kind}": f"{app_id}-{kind.lower()}"
                                 for kind in ("ACTIVITY", "STAGE_CHANGES", "STAGES", "DLQ")},
                              **env})


def segment_drift(settings: Settings) -> str | None:
    warnings = prepare_topics(settings)[1]
    return "\n".join(warnings) if warnings else None


def topic_configs(bootstrap: str, topic: str, *names: str) -> dict[str, str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, list(names))], config_filter="all")
    finally:
        admin.close()
    return {name: entry["value"] for name, entry in found["topic"][topic].items()
            if name in names}


def test_the_worker_s_internal_topics_exist_before_faust_asks_for_metadata(
        kafka_bootstrap, unique_name):
    # A changelog Faust creates at start can be missing from its consumer's first metadata;
    # it then joins the subscription at the next refresh, minutes later, by a rebalance.
    app = unique_name("internal")
    settings = settings_for(kafka_bootstrap, app, LEADSTAGE_CHANGELOG_SEGMENT_BYTES="2097152")
    created, warnings = prepare_topics(settings)
    assert warnings == []
    assert {f"{app}-leads-changelog", f"{app}-__assignor-__leader"} <= set(created)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(
            [f"{app}-leads-changelog", f"{app}-__assignor-__leader"])}
    finally:
        admin.close()
    assert described == {f"{app}-leads-changelog": settings.partitions,
                         f"{app}-__assignor-__leader": 1}
    assert topic_configs(kafka_bootstrap, f"{app}-leads-changelog", "cleanup.policy",
                         "segment.bytes") == {"cleanup.policy": "compact",
                                              "segment.bytes": "2097152"}
    assert prepare_topics(settings) == ([], [])  # a second worker creates nothing


def test_a_changelog_made_with_other_segments_is_reported_with_the_command_that_changes_it(
        kafka_bootstrap, unique_name):
    app = unique_name("segments")
    topic = f"{app}-leads-changelog"
    settings = settings_for(kafka_bootstrap, app)
    # as workers made it before they set the segment size: Kafka's default, 1 GiB
    create_topics(kafka_bootstrap, [topic], 2,
                  {"cleanup.policy": "compact", "segment.bytes": "1073741824"})
    drift = segment_drift(settings)
    assert drift is not None
    assert f"changelog topic {topic} has segment.bytes=1073741824, not " \
           "LEADSTAGE_CHANGELOG_SEGMENT_BYTES=67108864" in drift
    command = (f"kafka-configs.sh --bootstrap-server {kafka_bootstrap} --alter --entity-type "
               f"topics --entity-name {topic} --add-config segment.bytes=67108864")
    assert drift.endswith(command)

    # what that command does, through the admin API: the report goes
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            {"cleanup.policy": "compact",
                                             "segment.bytes": "67108864"})])
    finally:
        admin.close()
    # the broker answers describes with the old value for a moment after an alter (KRaft:
    # the controller's record reaches the broker's metadata asynchronously)
    deadline = time.monotonic() + 10
    while topic_configs(kafka_bootstrap, topic, "segment.bytes")["segment.bytes"] != "67108864":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert segment_drift(settings) is None
    other = segment_drift(settings_for(
        kafka_bootstrap, app, LEADSTAGE_CHANGELOG_SEGMENT_BYTES="2097152"))
    assert other is not None and "segment.bytes=67108864, not " \
        "LEADSTAGE_CHANGELOG_SEGMENT_BYTES=2097152" in other


def test_leadstage_topics_reports_the_changelog_s_segments_too(kafka_bootstrap, unique_name):
    # Operators run `leadstage topics` before the workers (the compose file's topics service).
    env = worker_env(kafka_bootstrap, unique_name("topics"))
    changelog = f"{env['LEADSTAGE_APP_ID']}-leads-changelog"
    create_topics(kafka_bootstrap, [changelog], 2,
                  {"cleanup.policy": "compact", "segment.bytes": "1073741824"})
    done = subprocess.run([LEADSTAGE, "topics"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created: ")
    assert f"warning: changelog topic {changelog} has segment.bytes=1073741824, not " \
           "LEADSTAGE_CHANGELOG_SEGMENT_BYTES=67108864" in done.stderr
