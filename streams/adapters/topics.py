"""Creates the application's topics (DESIGN §3) before the worker subscribes to them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    InvalidReplicationFactorError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from streams.adapters.settings import Settings


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Every topic the app uses, the worker's internal ones included: created before Faust's
    consumer first asks for metadata, so its first subscription finds them all (a changelog
    Faust creates itself can be missing from that metadata, and then joins the subscription
    only at the next metadata refresh, minutes later, by a rebalance)."""
    return [
        new_topic(settings, settings.topic_activity),
        new_topic(settings, settings.topic_stage_changes),
        new_topic(settings, settings.topic_stages, {"cleanup.policy": "compact",
                                                    "min.cleanable.dirty.ratio": "0.1",
                                                    "delete.retention.ms": "86400000"}),
        new_topic(settings, settings.topic_dlq),
        new_topic(settings, changelog_topic(settings), changelog_configs(settings)),
        # Faust's leader election: one partition, never written, held by the group's leader
        new_topic(settings, leader_topic(settings), partitions=1),
    ]


def new_topic(settings: Settings, name: str, configs: dict[str, str] | None = None,
              partitions: int | None = None) -> NewTopic:
    """A topic of the app's as it is created: the settings' partitions and replication (-1 is
    the broker's default.replication.factor, CreateTopics v4+, Kafka 2.4+), their
    min.insync.replicas if set, and `configs`."""
    durable = ({} if settings.min_insync_replicas is None
               else {"min.insync.replicas": str(settings.min_insync_replicas)})
    return NewTopic(name, partitions or settings.partitions, settings.replication_factor or -1,
                    topic_configs={**durable, **(configs or {})})


#: The worker's Faust table of lead states; Faust names its changelog after it.
LEADS_TABLE = "leads"


def changelog_topic(settings: Settings) -> str:
    """The leads table's changelog topic, as Faust names it."""
    return f"{settings.app_id}-{LEADS_TABLE}-changelog"


def changelog_configs(settings: Settings) -> dict[str, str]:
    """The leads changelog's topic configs: what Faust gives a table's changelog (compacted),
    and its segment size."""
    return {"cleanup.policy": "compact", "segment.bytes": str(settings.changelog_segment_bytes)}


def leader_topic(settings: Settings) -> str:
    """Faust's leader-assignor topic (faust.assignor.LeaderAssignor)."""
    return f"{settings.app_id}-__assignor-__leader"


def _too_few_brokers(admin: KafkaAdminClient, settings: Settings) -> str:
    try:
        brokers = f"{len(admin.describe_cluster()['brokers'])} broker(s)"
    except KafkaError:
        brokers = "fewer brokers"
    wanted = (f"LEADSTAGE_REPLICATION_FACTOR={settings.replication_factor}"
              if settings.replication_factor else "the broker's default.replication.factor")
    return (f"cannot create the topics with {wanted}: the cluster at "
            f"{settings.bootstrap_servers} has {brokers} (INVALID_REPLICATION_FACTOR)")


#: Kafka's error code for a topic the principal may not see or use.
TOPIC_AUTHORIZATION_FAILED = 29


class KafkaRefused(Exception):
    """Kafka refused what the settings' principal needs; the message names both."""


def _who(settings: Settings) -> str:
    return repr(settings.security.sasl_username or "this client")


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.bootstrap_list,
                            client_id=f"{settings.app_id}-admin",
                            **settings.security.kafka_python_kwargs())


def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics that do not exist yet; return the names created. KafkaRefused if
    the principal may not create them."""
    return prepare_topics(settings)[0]


def prepare_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """ensure_topics, and the warnings about topics that exist with less than the settings ask
    for (_segment_drift, _replication_drift), over one admin connection: what the worker and
    `leadstage topics` do before anything else. Topics are never altered: their data moves."""
    admin = _admin(settings)
    try:
        created, unled = _create_missing(admin, settings)
        configs = _described_configs(admin, settings)
        warnings = [_unled_warning(unled, settings), _segment_drift(configs, settings),
                    *_replication_drift(admin, configs, settings)]
        return created, [w for w in warnings if w is not None]
    finally:
        admin.close()


#: topic -> config name -> kafka-python's description of it ("value" among others)
TopicConfigs = dict[str, dict[str, dict[str, Any]]]


def _described_configs(admin: KafkaAdminClient, settings: Settings) -> TopicConfigs:
    """The configs the drift warnings read, in one request: the changelog's segment.bytes, and
    every topic's min.insync.replicas when the settings ask for one. Empty when they may not be
    described (the worker runs either way): kafka-python answers a topic the principal may not
    describe with no configs rather than the broker's error."""
    wanted: dict[str, list[str]] = {changelog_topic(settings): ["segment.bytes"]}
    if settings.replication_factor is not None and settings.min_insync_replicas is not None:
        for spec in topic_specs(settings):
            wanted.setdefault(spec.name, []).append("min.insync.replicas")
    try:
        found: TopicConfigs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, keys) for name, keys in wanted.items()],
            config_filter="all").get("topic", {})
    except KafkaError:
        return {}
    return found


def _replication_drift(admin: KafkaAdminClient, configs: TopicConfigs,
                       settings: Settings) -> list[str]:
    """A warning per topic of topic_specs that has fewer replicas, or a lower
    min.insync.replicas, than the settings ask for: made before they were set (an upgrade, or
    another tool). Nothing when the settings leave both to the broker, or the topics may not
    be described (the worker runs either way)."""
    wanted, in_sync = settings.replication_factor, settings.min_insync_replicas
    if wanted is None:
        return []
    names = [t.name for t in topic_specs(settings)]
    where = settings.bootstrap_servers
    warnings = []
    try:
        described = admin.describe_topics(names)
    except KafkaError:
        return []
    for topic in described:
        replicas = min((len(p["replica_nodes"]) for p in topic.get("partitions") or ()),
                       default=wanted)
        if replicas < wanted:
            warnings.append(
                f"topic {topic['name']} has {replicas} replica(s) per partition at least, not "
                f"LEADSTAGE_REPLICATION_FACTOR={wanted}: a broker lost can lose its data. Kafka "
                "adds replicas by reassignment: kafka-reassign-partitions.sh --bootstrap-server "
                f"{where} --reassignment-json-file <plan> --execute")
    for name in names:
        value = configs.get(name, {}).get("min.insync.replicas", {}).get("value")
        if in_sync is not None and value is not None and int(value) < in_sync:
            warnings.append(
                f"topic {name} has min.insync.replicas={value}, not "
                f"LEADSTAGE_MIN_INSYNC_REPLICAS={in_sync}: kafka-configs.sh --bootstrap-server "
                f"{where} --alter --entity-type topics --entity-name {name} --add-config "
                f"min.insync.replicas={in_sync}")
    return warnings


def ensure_topic(settings: Settings, name: str) -> bool:
    """Create one more topic of the app's (the forwarder's dead-letter topic) as topic_specs
    makes the others, if it is missing; True if it was created. KafkaRefused as ensure_topics."""
    admin = _admin(settings)
    try:
        return bool(_create_missing(admin, settings, [new_topic(settings, name)])[0])
    finally:
        admin.close()


#: How long a created topic may take to appear, led, in the broker's metadata.
METADATA_WAIT_S = 10.0


def _create_missing(admin: KafkaAdminClient, settings: Settings,
                    specs: list[NewTopic] | None = None) -> tuple[list[str], list[str]]:
    """The topics created, and those of them the broker's metadata did not show led in time."""
    existing = set(admin.list_topics())
    missing = [t for t in specs or topic_specs(settings) if t.name not in existing]
    if not missing:
        return [], []
    try:
        unled = create_led(admin, missing)
    except TopicAuthorizationFailedError:
        raise KafkaRefused(
            f"not authorized: principal {_who(settings)} may not create topic(s) "
            f"{', '.join(t.name for t in missing)} (TOPIC_AUTHORIZATION_FAILED at "
            f"{settings.bootstrap_servers})") from None
    except InvalidReplicationFactorError:
        raise KafkaRefused(_too_few_brokers(admin, settings)) from None
    return [t.name for t in missing], unled


def create_led(admin: KafkaAdminClient, topics: list[NewTopic],
               timeout_s: float = METADATA_WAIT_S) -> list[str]:
    """Create `topics` (any that exists meanwhile, made by another worker or tool, is left as it
    is) and wait_for_leaders; return the names not led in time."""
    with contextlib.suppress(TopicAlreadyExistsError):
        admin.create_topics(topics)
    return wait_for_leaders(admin, topics, timeout_s)


def _unled_warning(unled: list[str], settings: Settings) -> str | None:
    if not unled:
        return None
    return (f"topic(s) {', '.join(unled)} created but without a leader for every partition in "
            f"the metadata of {settings.bootstrap_servers} after {METADATA_WAIT_S:g} s: the "
            "worker subscribes to them when its consumer's metadata shows them (a rebalance)")


def wait_for_leaders(admin: KafkaAdminClient, topics: list[NewTopic],
                     timeout_s: float = METADATA_WAIT_S,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Wait until the broker's metadata shows every partition of `topics` with a leader;
    return the names still short of that when `timeout_s` is up (the worker goes on: such a
    topic joins its subscription at a later metadata refresh, by a rebalance).

    Under KRaft, CreateTopics answers once the controller has the topic; a broker serves it in
    its metadata only when it has applied the controller's records, a moment later. A consumer
    asking in that moment is told the topic does not exist, which is what creating the topics
    first is meant to prevent."""
    wanted = {t.name: t.num_partitions for t in topics}
    deadline = clock() + timeout_s
    delay = 0.01
    while True:
        try:
            described = admin.describe_topics(list(wanted))
        except KafkaError:
            described = []
        for topic in described:
            partitions = topic.get("partitions") or ()
            count = wanted.get(topic["name"])
            if topic.get("error_code") == TopicAuthorizationFailedError.errno:
                wanted.pop(topic["name"], None)  # not for this principal to see: not waited on
            elif (count is not None and topic.get("error_code") == 0 and partitions
                    and (count < 0 or len(partitions) == count)
                    and all(p.get("leader_id", -1) >= 0 for p in partitions)):
                del wanted[topic["name"]]
        if not wanted or clock() >= deadline:
            return sorted(wanted)
        sleep(delay)
        delay = min(delay * 2, 0.5)


def _segment_drift(configs: TopicConfigs, settings: Settings) -> str | None:
    """A warning when the leads changelog exists with a segment.bytes other than the settings'.
    It is set only when the topic is created, never altered on one that exists, so a worker
    upgraded onto an older changelog keeps that topic's segments, and its restores, until an
    operator changes them. None when they match, or the topic was not described."""
    topic = changelog_topic(settings)
    wanted = settings.changelog_segment_bytes
    entry = configs.get(topic, {}).get("segment.bytes")
    if entry is None or entry.get("value") in (None, str(wanted)):
        return None
    return (f"changelog topic {topic} has segment.bytes={entry['value']}, not "
            f"LEADSTAGE_CHANGELOG_SEGMENT_BYTES={wanted}: Kafka never compacts a partition's "
            "active segment, so a restore replays every state written to it (README "
            "\"Sizing\"). To change it: kafka-configs.sh --bootstrap-server "
            f"{settings.bootstrap_servers} --alter --entity-type topics --entity-name {topic} "
            f"--add-config segment.bytes={wanted}")
