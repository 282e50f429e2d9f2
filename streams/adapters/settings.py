"""Settings from the environment (DESIGN §8), shared by the worker, the CLI and the tools."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.core.resources import default_definitions, local_root


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


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
    definitions: Path = field(default_factory=default_definitions)
    data_dir: Path = field(default_factory=lambda: local_root() / ".cache" / "worker-data")
    web_host: str = "127.0.0.1"
    #: the address the web server binds; defaults to web_host (set 0.0.0.0 only in containers)
    web_bind: str = ""
    web_port: int = 6066
    sweep_interval: int = 60
    api_token: str | None = field(default=None, repr=False)
    security: KafkaSecurity = KafkaSecurity()
    #: HTTPS for the worker's pages: certificate chain and key files (PEM), both or neither
    web_tls_cert: str | None = None
    web_tls_key: str | None = None
    web_max_connections: int = 256
    web_first_request_s: int = 10

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
            definitions=definitions,
            data_dir=Path(get("LEADSTAGE_DATA_DIR", str(d.data_dir))),
            web_host=get("LEADSTAGE_WEB_HOST", d.web_host),
            web_bind=get("LEADSTAGE_WEB_BIND", get("LEADSTAGE_WEB_HOST", d.web_host)),
            web_port=_int(env, "LEADSTAGE_WEB_PORT", d.web_port),
            sweep_interval=_int(env, "LEADSTAGE_SWEEP_INTERVAL", d.sweep_interval),
            api_token=env.get("LEADSTAGE_API_TOKEN") or None,
            web_tls_cert=env.get("LEADSTAGE_WEB_TLS_CERT") or None,
            web_tls_key=env.get("LEADSTAGE_WEB_TLS_KEY") or None,
            web_max_connections=_int(env, "LEADSTAGE_WEB_MAX_CONNECTIONS",
                                     d.web_max_connections),
            web_first_request_s=_int(env, "LEADSTAGE_WEB_FIRST_REQUEST_SECONDS",
                                     d.web_first_request_s),
            security=KafkaSecurity(
                protocol=get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
                sasl_mechanism=(env.get("KAFKA_SASL_MECHANISM") or "").strip().upper() or None,
                sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
                sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
                ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
            ),
        )
