"""Creates the application's topics (DESIGN §3) before the worker subscribes to them."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError

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


def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics that do not exist yet; return the names created. KafkaRefused if
    the principal may not create them."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_list,
                             client_id=f"{settings.app_id}-admin",
                             **settings.security.kafka_python_kwargs())
    try:
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
    finally:
        admin.close()
