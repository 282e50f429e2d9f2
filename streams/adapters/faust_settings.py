"""Maps leadstage Settings onto faust.App keyword arguments (one place for the worker and tests)."""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import faust

from streams.adapters.rocksdb_store import STORE_URL
from streams.adapters.settings import KafkaSecurity, Settings


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust/aiokafka credentials for the DESIGN §8 security settings (None for plaintext)."""
    protocol = security.protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=security.ssl_cafile)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if not security.sasl_mechanism:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM")
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol != "PLAINTEXT":
        raise ValueError(f"unknown KAFKA_SECURITY_PROTOCOL {protocol!r}")
    return None


def faust_app_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The App options every leadstage Faust app uses."""
    broker = ";".join(f"kafka://{s}" for s in settings.bootstrap_list)
    kwargs: dict[str, Any] = {
        "broker": broker,
        "broker_credentials": faust_credentials(settings.security),
        "store": STORE_URL,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        # Faust creates a topic only if it is missing, and prepare_topics creates them all
        # first with the settings' factor, or the broker's default, which Faust cannot ask
        # for (it takes no -1): this is only what Faust would use should one go missing
        "topic_replication_factor": settings.replication_factor or 1,
        # web_host is the name other workers use to reach this one (lead lookups are routed to
        # the owner); web_bind is what the socket binds to. Faust's default bind is 0.0.0.0.
        "web_host": settings.web_host,
        "web_bind": settings.web_bind or settings.web_host,
        "web_port": settings.web_port,
        "consumer_auto_offset_reset": "earliest",
    }
    kwargs.update(overrides)
    return kwargs


def static_member_id(instance_id: str, url: str) -> str:
    """The group.instance.id of a worker: LEADSTAGE_INSTANCE_ID and a digest of the address
    other workers reach it at. Kafka hands a static member that rejoins the assignment it had,
    and Faust's assignor refuses one that names another address (an AssertionError inside
    aiokafka's coordinator, after which the worker never becomes ready). A worker whose
    address changed therefore joins as a new member, as it would without an id."""
    return f"{instance_id}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
