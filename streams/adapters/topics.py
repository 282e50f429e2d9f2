"""Creates the application's topics (DESIGN §3) before the worker subscribes to them."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, TopicAuthorizationFailedError

from streams.adapters.settings import Settings


def topic_specs(settings: Settings) -> list[NewTopic]:
    n = settings.partitions
    return [
        NewTopic(settings.topic_activity, n, 1),
        NewTopic(settings.topic_stage_changes, n, 1),
        NewTopic(settings.topic_stages, n, 1,
                 topic_configs={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                                "delete.retention.ms": "86400000"}),
        NewTopic(settings.topic_dlq, n, 1),
    ]


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


def prepare_topics(settings: Settings) -> tuple[list[str], str | None]:
    """ensure_topics, and _segment_drift's warning, over one admin connection: what the worker
    and `leadstage topics` do before anything else."""
    admin = _admin(settings)
    try:
        return _create_missing(admin, settings), _segment_drift(admin, settings)
    finally:
        admin.close()


def _create_missing(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    existing = set(admin.list_topics())
    missing = [t for t in topic_specs(settings) if t.name not in existing]
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
            try:
                admin.create_topics(missing)
            except TopicAuthorizationFailedError:
                raise KafkaRefused(
                    f"not authorized: principal {_who(settings)} may not create topic(s) "
                    f"{', '.join(t.name for t in missing)} (TOPIC_AUTHORIZATION_FAILED at "
                    f"{settings.bootstrap_servers})") from None
    return [t.name for t in missing]


#: The worker's Faust table of lead states; Faust names its changelog after it.
LEADS_TABLE = "leads"


def changelog_topic(settings: Settings) -> str:
    """The leads table's changelog topic, as Faust names it."""
    return f"{settings.app_id}-{LEADS_TABLE}-changelog"


def _segment_drift(admin: KafkaAdminClient, settings: Settings) -> str | None:
    """A warning when the leads changelog exists with a segment.bytes other than the settings'.
    Faust sets it only when it creates the topic and never alters one that exists, so a worker
    upgraded onto an older changelog keeps that topic's segments, and its restores, until an
    operator changes them. None when they match, or the topic is not known to the broker (yet)
    or may not be described (the worker runs either way): kafka-python answers those with no
    configs rather than the broker's error."""
    topic = changelog_topic(settings)
    wanted = settings.changelog_segment_bytes
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, ["segment.bytes"])],
            config_filter="all")
    except KafkaError:
        return None
    entry = found.get("topic", {}).get(topic, {}).get("segment.bytes")
    if entry is None or entry.get("value") in (None, str(wanted)):
        return None
    return (f"changelog topic {topic} has segment.bytes={entry['value']}, not "
            f"LEADSTAGE_CHANGELOG_SEGMENT_BYTES={wanted}: Kafka never compacts a partition's "
            "active segment, so a restore replays every state written to it (README "
            "\"Sizing\"). To change it: kafka-configs.sh --bootstrap-server "
            f"{settings.bootstrap_servers} --alter --entity-type topics --entity-name {topic} "
            f"--add-config segment.bytes={wanted}")
