"""What the app asks Kafka for when it creates its topics (adapters/topics.py): every topic the
worker uses, its internal ones included, with the replication the settings give."""

from __future__ import annotations

from streams.adapters.faust_settings import faust_app_kwargs
from streams.adapters.settings import Settings
from streams.adapters.topics import topic_specs


def specs(**env: str) -> dict[str, tuple[int, int, dict[str, str]]]:
    return {t.name: (t.num_partitions, t.replication_factor, dict(t.topic_configs or {}))
            for t in topic_specs(Settings.from_env(env))}


def test_the_worker_s_internal_topics_are_created_with_the_others_as_faust_would_make_them():
    got = specs(LEADSTAGE_APP_ID="acme", LEADSTAGE_PARTITIONS="6",
                LEADSTAGE_CHANGELOG_SEGMENT_BYTES="2097152")
    assert set(got) == {"lead-activity", "lead-stage-changes", "lead-stages",
                        "lead-activity-dlq", "acme-leads-changelog",
                        "acme-__assignor-__leader"}
    # Faust's table changelog: compacted, as many partitions as the input, our segment size
    assert got["acme-leads-changelog"] == (6, -1, {"cleanup.policy": "compact",
                                                  "segment.bytes": "2097152"})
    # Faust's leader assignor: one partition, no configs
    assert got["acme-__assignor-__leader"] == (1, -1, {})
    assert got["lead-stages"][2]["cleanup.policy"] == "compact"
    assert {partitions for name, (partitions, _, _) in got.items()
            if "__leader" not in name} == {6}


def test_every_topic_gets_the_replication_factor_and_min_insync_replicas_set():
    got = specs(LEADSTAGE_REPLICATION_FACTOR="3", LEADSTAGE_MIN_INSYNC_REPLICAS="2")
    assert len(got) == 6
    for name, (_, replicas, configs) in got.items():
        assert replicas == 3, name
        assert configs["min.insync.replicas"] == "2", name
    assert got["leadstage-leads-changelog"][2]["cleanup.policy"] == "compact"


def test_unset_the_broker_decides_and_no_min_insync_replicas_overrides_its_own():
    for name, (_, replicas, configs) in specs().items():
        assert replicas == -1, name
        assert "min.insync.replicas" not in configs, name


def test_faust_is_given_the_same_replication_for_anything_it_would_create():
    import faust

    kwargs = faust_app_kwargs(Settings.from_env({"LEADSTAGE_REPLICATION_FACTOR": "3"}))
    assert kwargs["topic_replication_factor"] == 3
    # unset, the broker decides (-1), which Faust's setting refuses: it gets its own default
    kwargs = faust_app_kwargs(Settings.from_env({}))
    assert faust.App("t", **kwargs).conf.topic_replication_factor == 1
