"""What the app asks Kafka for when it creates its topics (adapters/topics.py): every topic the
worker uses, its internal ones included, with the replication the settings give, and the wait
until the broker's metadata shows them led."""

from __future__ import annotations

from kafka.admin import NewTopic

from streams.adapters.faust_settings import faust_app_kwargs
from streams.adapters.settings import Settings
from streams.adapters.topics import topic_specs, wait_for_leaders


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


class _LaggingMetadata:
    """A broker's metadata answers as KRaft gives them right after CreateTopics: the topic
    unknown, then known with partitions still leaderless, then led (kafka-python's dicts)."""

    def __init__(self, answers: list[tuple[int, list[int]]]) -> None:
        self.answers = answers  # per call: (error_code, each partition's leader_id)
        self.calls = 0

    def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        error, leaders = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [{"name": name, "error_code": error,
                 "partitions": [{"partition_index": i, "leader_id": leader}
                                for i, leader in enumerate(leaders)]} for name in names]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_created_topics_are_waited_on_until_every_partition_has_a_leader():
    metadata = _LaggingMetadata([(3, []), (0, [1, -1]), (0, [1])])  # unknown, 1 of 2 led, ...
    clock = _Clock()
    topic = NewTopic("t", 2, 1)
    assert wait_for_leaders(metadata, [topic], 10, clock, clock.sleep) == ["t"]  # never 2 led
    metadata = _LaggingMetadata([(3, []), (5, []), (0, [1, -1]), (0, [1, 1])])
    assert wait_for_leaders(metadata, [topic], 10, clock, clock.sleep) == []
    assert metadata.calls == 4


def test_the_wait_for_metadata_gives_up_at_its_deadline_and_names_the_topic():
    metadata = _LaggingMetadata([(3, [])])
    clock = _Clock()
    assert wait_for_leaders(metadata, [NewTopic("a", 1, 1), NewTopic("b", 1, 1)], 10, clock,
                     clock.sleep) == ["a", "b"]
    assert 10 <= clock.now < 11  # backed off, not spun: a handful of describes
    assert metadata.calls < 30


def test_a_topic_the_principal_may_not_describe_is_not_waited_on():
    metadata = _LaggingMetadata([(29, [])])  # TOPIC_AUTHORIZATION_FAILED
    clock = _Clock()
    assert wait_for_leaders(metadata, [NewTopic("t", 1, 1)], 10, clock, clock.sleep) == []
    assert clock.now == 0
