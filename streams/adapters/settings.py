"""Settings from the environment (DESIGN §8), shared by the worker, the CLI and the tools."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from streams.core.resources import connectors_dir as shipped_connectors
from streams.core.resources import default_definitions, local_root


def _int(env: Mapping[str, str], name: str, default: int, maximum: int | None = None,
         minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


#: Kafka's replication factor is an int16 on the wire.
MAX_REPLICATION_FACTOR = 2**15 - 1

#: A fetch must come back well within the consumer's request timeout (Faust's is 90 s).
MAX_FETCH_WAIT_MS = 10_000


#: Kafka's bounds for a topic's segment.bytes (4.0 and later: at least 1 MiB; an int32).
MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES = 2**20, 2**31 - 1


#: Kafka's own rule for group.instance.id (as for topic names), less the 9 characters
#: adapters.faust_settings.static_member_id appends.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,240}")


def _instance_id(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not _INSTANCE_ID.fullmatch(raw) or raw in (".", ".."):
        raise ValueError("LEADSTAGE_INSTANCE_ID must be 1 to 240 of A-Z a-z 0-9 . _ - "
                         f"(not . or ..), got {raw[:60]!r}")
    return raw


#: How the worker's RocksDB stores compress lead states (adapters.rocksdb_store has why "none").
STATE_COMPRESSIONS = ("none", "lz4", "snappy", "zstd")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """Kafka client security; the password never appears in repr() or logs."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        """Refuse what a client would silently misread (a typo in the protocol once made a
        tool send in plaintext). The messages name variables, never the password."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
                             f"not {self.protocol[:40]!r}")
        sasl = self.protocol.startswith("SASL_")
        if self.sasl_mechanism is not None and self.sasl_mechanism not in MECHANISMS:
            raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                             f"not {self.sasl_mechanism[:40]!r}")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs "
                             "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(f"KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is "
                             f"{self.protocol}: use SASL_SSL (or SASL_PLAINTEXT)")
        if self.ssl_cafile is not None and not Path(self.ssl_cafile).is_file():
            raise ValueError(f"KAFKA_SSL_CAFILE {self.ssl_cafile!r} is not a readable file")

    def kafka_python_kwargs(self) -> dict[str, object]:
        """Keyword arguments for kafka-python clients (KafkaProducer, KafkaConsumer, admin)."""
        kwargs: dict[str, object] = {"security_protocol": self.protocol}
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            kwargs["ssl_cafile"] = self.ssl_cafile
        return kwargs


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "leadstage"
    topic_activity: str = "lead-activity"
    topic_stage_changes: str = "lead-stage-changes"
    topic_stages: str = "lead-stages"
    topic_dlq: str = "lead-activity-dlq"
    partitions: int = 8
    #: replicas of each topic the app creates; None asks the broker for its
    #: default.replication.factor (CreateTopics' -1), as Kafka Streams does by default
    replication_factor: int | None = None
    #: min.insync.replicas written on each topic the app creates; None leaves the broker's. With
    #: acks=all (every leadstage producer) a write is acknowledged once this many replicas have
    #: it, so 2 of 3 survives the loss of any one broker without refusing writes
    min_insync_replicas: int | None = None
    definitions: Path = field(default_factory=default_definitions)
    data_dir: Path = field(default_factory=lambda: local_root() / ".cache" / "worker-data")
    web_host: str = "127.0.0.1"
    #: the address the web server binds; defaults to web_host (set 0.0.0.0 only in containers)
    web_bind: str = ""
    web_port: int = 6066
    sweep_interval: int = 60
    #: Records per fetch, at most: one batch of the commit protocol, except that one
    #: partition's fetched records up to 1.5 times this are handled whole rather than cut
    #: (adapters/batch_consumer.py, `whole_partitions`). Most of the cost is per lead touched,
    #: and each batch waits for two acknowledged flushes, so larger batches go faster when the
    #: worker is behind; but a batch's decoded states are all held until its commit, so peak
    #: memory grows with it (README "Sizing" has both measured: smaller batches save memory,
    #: and cost throughput when the worker is behind on recent leads).
    max_poll_records: int = 20_000
    #: How long the broker may hold a fetch that finds no new records. The consumer sends one
    #: fetch at a time to a broker, naming only the partitions with nothing left in its buffer;
    #: while one such fetch waits, a partition whose buffer just ran dry cannot be fetched, so
    #: the worker idles up to this long (Faust's fixed 1,500 ms let a steady stream settle into
    #: batches that far apart, bench/README.md). Shorter means more empty fetches when idle.
    fetch_max_wait_ms: int = 20
    #: compression of the lead states in RocksDB, one of STATE_COMPRESSIONS: "none" spends disk
    #: (about three times) to spare the CPU that compactions spend compressing states again
    state_compression: str = "none"
    #: segment.bytes of the leads table's changelog topic, set when the worker creates it.
    #: Kafka never compacts a partition's active segment, so a restore replays every state
    #: written to it, superseded or not; at Kafka's default of 1 GiB that is up to about a
    #: million states per partition. Smaller segments roll sooner and get compacted, so a
    #: restore reads little more than one state per lead (README "Sizing").
    changelog_segment_bytes: int = 64 * 2**20
    api_token: str | None = field(default=None, repr=False)
    security: KafkaSecurity = KafkaSecurity()
    #: HTTPS for the worker's pages: certificate chain and key files (PEM), both or neither
    web_tls_cert: str | None = None
    web_tls_key: str | None = None
    web_max_connections: int = 256
    web_first_request_s: int = 10
    #: Kafka static membership (group.instance.id), unique per worker: a worker restarted under
    #: the same id takes its partitions back at once instead of after its old session expires
    instance_id: str | None = None

    def web_tls_context(self) -> ssl.SSLContext | None:
        if not (self.web_tls_cert or self.web_tls_key):
            return None
        if not (self.web_tls_cert and self.web_tls_key):
            raise ValueError("LEADSTAGE_WEB_TLS_CERT and LEADSTAGE_WEB_TLS_KEY go together")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.web_tls_cert, self.web_tls_key)
        return context

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()

        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        definitions = Path(get("LEADSTAGE_DEFINITIONS", str(d.definitions)))
        return cls(
            bootstrap_servers=get("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers),
            app_id=get("LEADSTAGE_APP_ID", d.app_id),
            topic_activity=get("LEADSTAGE_TOPIC_ACTIVITY", d.topic_activity),
            topic_stage_changes=get("LEADSTAGE_TOPIC_STAGE_CHANGES", d.topic_stage_changes),
            topic_stages=get("LEADSTAGE_TOPIC_STAGES", d.topic_stages),
            topic_dlq=get("LEADSTAGE_TOPIC_DLQ", d.topic_dlq),
            partitions=_int(env, "LEADSTAGE_PARTITIONS", d.partitions),
            **_replication(env),
            definitions=definitions,
            data_dir=Path(get("LEADSTAGE_DATA_DIR", str(d.data_dir))),
            web_host=get("LEADSTAGE_WEB_HOST", d.web_host),
            web_bind=get("LEADSTAGE_WEB_BIND", get("LEADSTAGE_WEB_HOST", d.web_host)),
            web_port=_int(env, "LEADSTAGE_WEB_PORT", d.web_port),
            sweep_interval=_int(env, "LEADSTAGE_SWEEP_INTERVAL", d.sweep_interval),
            max_poll_records=_int(env, "LEADSTAGE_MAX_POLL_RECORDS", d.max_poll_records),
            fetch_max_wait_ms=_int(env, "LEADSTAGE_FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms,
                                   MAX_FETCH_WAIT_MS),
            state_compression=_choice(env, "LEADSTAGE_STATE_COMPRESSION", d.state_compression,
                                      STATE_COMPRESSIONS),
            changelog_segment_bytes=_int(env, "LEADSTAGE_CHANGELOG_SEGMENT_BYTES",
                                         d.changelog_segment_bytes, MAX_SEGMENT_BYTES,
                                         MIN_SEGMENT_BYTES),
            api_token=env.get("LEADSTAGE_API_TOKEN") or None,
            web_tls_cert=env.get("LEADSTAGE_WEB_TLS_CERT") or None,
            web_tls_key=env.get("LEADSTAGE_WEB_TLS_KEY") or None,
            web_max_connections=_int(env, "LEADSTAGE_WEB_MAX_CONNECTIONS",
                                     d.web_max_connections),
            web_first_request_s=_int(env, "LEADSTAGE_WEB_FIRST_REQUEST_SECONDS",
                                     d.web_first_request_s),
            instance_id=_instance_id(env.get("LEADSTAGE_INSTANCE_ID", "")),
            security=KafkaSecurity(
                protocol=get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
                sasl_mechanism=(env.get("KAFKA_SASL_MECHANISM") or "").strip().upper() or None,
                sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
                sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
                ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
            ),
        )


def _replication(env: Mapping[str, str]) -> dict[str, int | None]:
    replicas = _int(env, "LEADSTAGE_REPLICATION_FACTOR", 0, MAX_REPLICATION_FACTOR) or None
    in_sync = _int(env, "LEADSTAGE_MIN_INSYNC_REPLICAS", 0, MAX_REPLICATION_FACTOR) or None
    if in_sync is not None:
        # The broker accepts a topic whose min.insync.replicas exceeds its replicas; every
        # acks=all write to it is then refused as NOT_ENOUGH_REPLICAS, forever.
        if replicas is None:
            raise ValueError("LEADSTAGE_MIN_INSYNC_REPLICAS needs LEADSTAGE_REPLICATION_FACTOR "
                             "(at least as many replicas)")
        if in_sync > replicas:
            raise ValueError(f"LEADSTAGE_MIN_INSYNC_REPLICAS={in_sync} is more than "
                             f"LEADSTAGE_REPLICATION_FACTOR={replicas}: every write with "
                             "acks=all would be refused")
    return {"replication_factor": replicas, "min_insync_replicas": in_sync}


def _origin(raw: str, name: str) -> str:
    """`scheme://host[:port]`, as browsers send it in the Origin header."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{name}: {raw[:80]!r} is not an origin like https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class CollectorSettings:
    """`leadstage collect` (DESIGN §9); Kafka settings come from Settings."""

    host: str = "127.0.0.1"
    port: int = 6070
    keys_file: Path = field(default_factory=lambda: local_root() / ".cache" /
                            "collect-keys.yaml")
    connectors_dir: Path = field(default_factory=shipped_connectors)
    #: origins allowed to call from browsers, besides those of the browser keys
    allowed_origins: tuple[str, ...] = ()
    #: the address senders call (webhook signatures cover it), e.g. https://collect.example.com
    public_url: str | None = None
    #: events handed to Kafka and not yet acknowledged, over all requests; more is answered 429
    max_in_flight: int = 50_000
    #: how long an event may wait for Kafka before its request is answered 503
    kafka_timeout_ms: int = 10_000
    max_connections: int = 1024
    #: a request's headers, and then its body, must arrive within this many seconds each
    request_timeout_s: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CollectorSettings:
        env = os.environ if env is None else env
        d = cls()
        origins = tuple(_origin(o, "LEADSTAGE_COLLECT_ALLOWED_ORIGINS")
                        for o in env.get("LEADSTAGE_COLLECT_ALLOWED_ORIGINS", "").split(",")
                        if o.strip())
        public = (env.get("LEADSTAGE_COLLECT_PUBLIC_URL") or "").strip().rstrip("/") or None
        if public is not None and not public.startswith(("http://", "https://")):
            raise ValueError("LEADSTAGE_COLLECT_PUBLIC_URL must start with http:// or https://")
        return cls(
            host=(env.get("LEADSTAGE_COLLECT_HOST") or "").strip() or d.host,
            port=_int(env, "LEADSTAGE_COLLECT_PORT", d.port),
            keys_file=Path((env.get("LEADSTAGE_COLLECT_KEYS") or "").strip()
                           or str(d.keys_file)),
            connectors_dir=Path((env.get("LEADSTAGE_COLLECT_CONNECTORS") or "").strip()
                                or str(d.connectors_dir)),
            allowed_origins=origins,
            public_url=public,
            max_in_flight=_int(env, "LEADSTAGE_COLLECT_MAX_IN_FLIGHT", d.max_in_flight),
            kafka_timeout_ms=_int(env, "LEADSTAGE_COLLECT_KAFKA_TIMEOUT_MS",
                                  d.kafka_timeout_ms),
            max_connections=_int(env, "LEADSTAGE_COLLECT_MAX_CONNECTIONS", d.max_connections),
            request_timeout_s=_int(env, "LEADSTAGE_COLLECT_REQUEST_TIMEOUT_SECONDS",
                                   d.request_timeout_s),
        )


def origin(raw: str) -> str:
    """A browser origin in its canonical form; ValueError when it is not one."""
    return _origin(raw, "origin")

