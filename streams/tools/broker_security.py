"""What makes the local broker a secured one (`leadstage broker start --secure`): TLS from a CA of
its own, SCRAM-SHA-512 users created when the storage is formatted, the StandardAuthorizer with
nothing allowed unless an ACL says so, and one least-privilege principal per role:

- `admin`: everything (super user; creates the ACLs);
- `leadstage-worker`: read `lead-activity`; write `lead-stage-changes`, `lead-stages` and
  `lead-activity-dlq`; its own `leadstage-*` topics (changelogs) and `leadstage*` groups;
- `producer-web`, `producer-crm`, `collector`: write `lead-activity`;
- `crm-sync`: read `lead-stage-changes`, `lead-stages` and its `crm-sync*` groups; write
  `lead-stage-changes-forward-dlq`.

Each principal's settings (DESIGN §8 variables, random password) are written to
`<broker dir>/clients/<principal>.env`, mode 0600: `env $(cat that file) leadstage ...`.
Passwords are never printed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)

from streams.tools.certificates import BrokerTls, make_broker_tls

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
PRINCIPALS = ("leadstage-worker", "producer-web", "producer-crm", "collector", "crm-sync")

_TOPIC, _GROUP = ResourceType.TOPIC, ResourceType.GROUP
_LITERAL, _PREFIXED = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
_R, _W, _D, _C = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE, ACLOperation.CREATE
_ALL = ACLOperation.ALL

#: principal -> (resource type, name, literal or prefixed, operations)
GRANTS: dict[str, list[tuple[Any, str, Any, tuple[Any, ...]]]] = {
    "leadstage-worker": [
        (_TOPIC, "lead-activity", _LITERAL, (_R, _D)),
        (_TOPIC, "lead-stage-changes", _LITERAL, (_W, _D, _C)),
        (_TOPIC, "lead-stages", _LITERAL, (_W, _D, _C)),
        (_TOPIC, "lead-activity-dlq", _LITERAL, (_W, _D, _C)),
        (_TOPIC, "leadstage-", _PREFIXED, (_ALL,)),
        (_GROUP, "leadstage", _PREFIXED, (_R, _D)),
    ],
    "producer-web": [(_TOPIC, "lead-activity", _LITERAL, (_W, _D))],
    "producer-crm": [(_TOPIC, "lead-activity", _LITERAL, (_W, _D))],
    "collector": [(_TOPIC, "lead-activity", _LITERAL, (_W, _D))],
    "crm-sync": [
        (_TOPIC, "lead-stage-changes", _LITERAL, (_R, _D)),
        (_TOPIC, "lead-stages", _LITERAL, (_R, _D)),
        (_TOPIC, "lead-stage-changes-forward-dlq", _LITERAL, (_W, _D, _C)),
        (_GROUP, "crm-sync", _PREFIXED, (_R, _D)),
    ],
}


@dataclass(frozen=True)
class Credentials:
    tls: BrokerTls
    passwords: dict[str, str]  # principal (admin included) -> password


def new_credentials(folder: Path) -> Credentials:
    """A new CA, server certificate and random passwords (kept in the broker's folder)."""
    tls = make_broker_tls(folder / "tls")
    passwords = {p: secrets.token_urlsafe(24) for p in (ADMIN, *PRINCIPALS)}
    return Credentials(tls, passwords)


def server_properties(port: int, controller_port: int, credentials: Credentials) -> str:
    """The listener, TLS, SASL and authorizer lines of a secured broker's server.properties.
    The controller listener stays PLAINTEXT on 127.0.0.1: SCRAM credentials live in the
    metadata the controller serves, so they cannot authenticate the controller itself; its
    ANONYMOUS principal is a super user there, reachable only from this machine."""
    tls, admin = credentials.tls, credentials.passwords[ADMIN]
    return f"""\
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms={MECHANISM}
sasl.mechanism.inter.broker.protocol={MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="{ADMIN}" password="{admin}";
ssl.keystore.type=PKCS12
ssl.keystore.location={tls.keystore}
ssl.keystore.password={tls.keystore_password}
ssl.key.password={tls.keystore_password}
ssl.truststore.type=PEM
ssl.truststore.location={tls.ca_file}
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{ADMIN};User:ANONYMOUS
"""


def scram_arguments(credentials: Credentials) -> list[str]:
    """`kafka-storage format` arguments that create every user at format time."""
    return [f"--add-scram={MECHANISM}=[name={name},password={password}]"
            for name, password in credentials.passwords.items()]


def client_kwargs(credentials: Credentials, principal: str = ADMIN) -> dict[str, Any]:
    """kafka-python keyword arguments for `principal`."""
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": credentials.passwords[principal],
            "ssl_cafile": str(credentials.tls.ca_file)}


def environment(bootstrap: str, credentials: Credentials, principal: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM, "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD": credentials.passwords[principal],
            "KAFKA_SSL_CAFILE": str(credentials.tls.ca_file)}


def write_client_files(folder: Path, bootstrap: str, credentials: Credentials) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for principal in (ADMIN, *PRINCIPALS):
        path = folder / f"{principal}.env"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in
                                environment(bootstrap, credentials, principal).items()))


def read_client_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def credentials_from(folder: Path, tls_password: str | None = None) -> Credentials | None:
    """The credentials of a broker formatted earlier (from its client files), if any."""
    clients, tls_dir = folder / "clients", folder / "tls"
    if not (clients / f"{ADMIN}.env").exists() or not (tls_dir / "keystore.password").exists():
        return None
    passwords = {p: read_client_file(clients / f"{p}.env")["KAFKA_SASL_PASSWORD"]
                 for p in (ADMIN, *PRINCIPALS)}
    tls = BrokerTls(tls_dir / "ca.pem", tls_dir / "server.p12",
                    (tls_dir / "keystore.password").read_text().strip())
    return Credentials(tls, passwords)


def remember_tls_password(folder: Path, credentials: Credentials) -> None:
    path = folder / "tls" / "keystore.password"
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(credentials.tls.keystore_password)


def grant(bootstrap: str, credentials: Credentials,
          grants: Mapping[str, list[tuple[Any, str, Any, tuple[Any, ...]]]] = GRANTS,
          echo: Callable[[str], None] = print) -> int:
    """Create the ACLs of every principal (as admin); returns how many."""
    acls = [ACL(principal=f"User:{principal}", host="*", operation=operation,
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(kind, name, pattern))
            for principal, rules in grants.items()
            for kind, name, pattern, operations in rules for operation in operations]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadstage-acls",
                             **client_kwargs(credentials))
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    failed = result.get("failed", [])
    if failed:
        raise RuntimeError(f"{len(failed)} ACL(s) could not be created: {failed[0][1]}")
    echo(f"Created {len(acls)} ACLs for {', '.join(PRINCIPALS)}")
    return len(acls)
