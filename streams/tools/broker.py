"""A single-node KRaft Apache Kafka broker built from Maven Central jars (DESIGN §7), or a small
cluster of them on one machine (cluster_configs).

The jars are resolved once by Maven from `deploy/kafka/pom.xml` into `.cache/kafka/<version>/libs`;
the broker's config, data, log and pid live in a broker folder (default `.cache/broker`). Both are
ignored by git. The broker runs in its own session so Ctrl-C in a terminal does not kill it, and it
is always stopped by its recorded process id.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.core.resources import local_root
from streams.tools import broker_security

POM = local_root() / "deploy" / "kafka" / "pom.xml"
DEFAULT_DIR = local_root() / ".cache" / "broker"
SECURE_DIR = local_root() / ".cache" / "broker-secure"
CLUSTER_DIR = local_root() / ".cache" / "broker-cluster"
JAR_CACHE = local_root() / ".cache" / "kafka"
HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    """A problem a user can act on; the message says what to do."""


@dataclass(frozen=True)
class BrokerConfig:
    port: int = 9092
    controller_port: int = 9093
    directory: Path = DEFAULT_DIR
    heap: str = "512m"
    #: SASL_SSL (SCRAM-SHA-512) with ACLs instead of PLAINTEXT (DESIGN §8, README "Security")
    secure: bool = False
    #: this node's KRaft id; node 1 is the controller (and a broker), the others brokers only
    node_id: int = 1
    #: the brokers of the cluster this node is in: the replication of Kafka's own topics and
    #: the default of topics created without a factor
    cluster_size: int = 1
    #: node 1's controller port, which the other nodes of a cluster name as the quorum
    quorum_port: int | None = None
    #: what every node of a cluster is formatted with; a single node makes up its own
    cluster_id: str | None = None

    @classmethod
    def from_env(cls, secure: bool = False, nodes: int = 1) -> BrokerConfig:
        """The same variables for every kind; a secured broker and a cluster (`nodes` > 1, the
        first node's settings: cluster_configs makes the others) default to other ports and
        folders of their own, so they run side by side."""
        if nodes > 1 and secure:
            raise BrokerError("a local cluster is plaintext only: --secure takes one node")
        default_port, default_dir = (9192, SECURE_DIR) if secure else (
            (9292, CLUSTER_DIR) if nodes > 1 else (9092, DEFAULT_DIR))
        port = int(os.environ.get("LEADSTAGE_BROKER_PORT", default_port))
        return cls(
            port=port,
            controller_port=int(os.environ.get("LEADSTAGE_BROKER_CONTROLLER_PORT", port + 1)),
            directory=Path(os.environ.get("LEADSTAGE_BROKER_DIR", default_dir)),
            secure=secure,
        )

    @property
    def controller(self) -> bool:
        """Node 1 is the KRaft controller (of a single node and of a cluster)."""
        return self.node_id == 1

    @property
    def clients_dir(self) -> Path:
        """Per principal, `<name>.env`: the DESIGN §8 variables to reach a secured broker."""
        return self.directory / "clients"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"


def kafka_version(pom: Path = POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise BrokerError(f"{pom} does not pin <kafka.version>")
    return match.group(1).strip()


def _require_tools() -> None:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java is not installed: install Java 17+ (e.g. openjdk-17-jre).")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if match and int(match.group(1)) < 17:
        raise BrokerError(f"Kafka 4 needs Java 17 or newer; found: {out.splitlines()[0]}")
    if shutil.which("mvn") is None and not _libs_dir().exists():
        raise BrokerError("Maven is not installed: install Maven 3 (e.g. the `maven` package).")


def _libs_dir() -> Path:
    return JAR_CACHE / kafka_version() / "libs"


def resolve_jars(echo: Callable[[str], None] = print) -> Path:
    """Download the broker jars with Maven once; later calls return the cached folder."""
    libs = _libs_dir()
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    echo(f"Resolving Apache Kafka {kafka_version()} from Maven Central (once)...")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    cmd = [
        "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BrokerError(f"Maven could not resolve the Kafka jars:\n{tail}")
    staging.rename(libs)  # atomic: a half-downloaded folder is never mistaken for the cache
    return libs


def _server_properties(cfg: BrokerConfig,
                       credentials: broker_security.Credentials | None = None) -> str:
    # Single node, broker and controller in one process, tuned for fast tests and demos. Tests
    # and benchmarks delete their topics as they end, often just before the broker stops: the
    # files of deleted topics go after 1 s rather than a minute (log.segment.delete.delay.ms,
    # the broker's name for file.delete.delay.ms), and the broker's file tasks start 1 s after
    # it does, not 30 (log.initial.task.delay.ms, internal since Kafka 3.8, KAFKA-16552).
    controller_listener = (f",CONTROLLER://{HOST}:{cfg.controller_port}" if cfg.controller
                           else "")
    listeners = broker_security.server_properties(cfg.port, cfg.controller_port, credentials) \
        if credentials is not None else f"""\
listeners=PLAINTEXT://{HOST}:{cfg.port}{controller_listener}
advertised.listeners=PLAINTEXT://{HOST}:{cfg.port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"""
    # In a cluster Kafka's own topics (the group offsets above all) have a replica on every
    # node, so losing one node loses none of them.
    replicas = cfg.cluster_size
    return f"""\
process.roles={"broker,controller" if cfg.controller else "broker"}
node.id={cfg.node_id}
controller.quorum.voters=1@{HOST}:{cfg.quorum_port or cfg.controller_port}
controller.listener.names=CONTROLLER
{listeners}log.dirs={cfg.data_dir}
num.partitions=1
default.replication.factor={replicas}
min.insync.replicas=1
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.segment.delete.delay.ms=1000
log.initial.task.delay.ms=1000
log.retention.hours=168
log.cleaner.dedupe.buffer.size=8388608
"""


def _log4j2_properties(cfg: BrokerConfig) -> str:
    return f"""\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {cfg.log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _java_cmd(cfg: BrokerConfig, libs: Path, main: str, *args: str) -> list[str]:
    return [
        "java", f"-Xms{cfg.heap}", f"-Xmx{cfg.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.directory / 'log4j2.properties'}",
        "-cp", f"{libs}/*", main, *args,
    ]  # fmt: skip


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child not yet reaped) is not alive.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def running_pid(cfg: BrokerConfig) -> int | None:
    """The pid of the broker this folder started, if that process still runs Kafka."""
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc: trust the pid file
    return pid if b"kafka.Kafka" in cmdline else None


def _listening(address: str, timeout_s: float) -> bool:
    """Whether host:port takes a TCP connection."""
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def accepts_clients(bootstrap: str, timeout_s: float = 5.0, **security: Any) -> bool:
    """True when a kafka-python client gets cluster metadata with at least one broker.

    No address taking connections is False at once: kafka-python's client would wait out its
    own bootstrap timeout first (30 s), so a broker restarting after a kill -9 was seen ready
    that long after it was."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not any(_listening(address, timeout_s) for address in bootstrap.split(",")):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="leadstage-broker-probe",
            **security,
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


@contextlib.contextmanager
def topics_removed_after(bootstrap: str, echo: Callable[[str], object] = print,
                         data_dir: Path | None = None) -> Iterator[None]:
    """Delete, when the block ends, the topics created on the broker while it ran.

    For a benchmark or test session on the local broker, which keeps its data from one start
    to the next: each run creates topics of throwaway records (a `make bench` leaves over a
    gigabyte), and runs added up to tens of gigabytes on a developer's disk. Every topic that
    appears while the block runs goes, whoever created it: so never for a broker the user named
    (KAFKA_BOOTSTRAP_SERVERS), and on the local broker a `leadstage demo` started during a test
    session loses its topics. A failed deletion is reported, not raised: it must not fail the
    run it cleans up after. With the broker's `data_dir`, the block ends once the deleted
    topics' files are gone (at most 10 s): the run may stop the broker next, and a broker
    stopped first keeps them until its next start.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    def admin() -> contextlib.closing[KafkaAdminClient]:
        return contextlib.closing(KafkaAdminClient(bootstrap_servers=bootstrap,
                                                   client_id="leadstage-cleanup"))

    with admin() as client:
        before = user_topics(client)
    try:
        yield
    finally:
        try:
            with admin() as client:  # a new one: the broker may have restarted meanwhile
                created = sorted(user_topics(client) - before)
                if created:
                    client.delete_topics(created, timeout_ms=60_000)
            if created and data_dir is not None and not _files_gone(data_dir, created, 10.0):
                echo(f"the files of deleted topics are still in {data_dir}")
        except (KafkaError, OSError) as exc:
            echo(f"could not delete the topics this run created: {type(exc).__name__}: {exc}")


def user_topics(admin: Any) -> set[str]:
    """The topics on the broker of a kafka-python admin client, Kafka's own (`__…`) left out."""
    return {t for t in admin.list_topics() if not t.startswith("__")}


def _files_gone(data_dir: Path, topics: list[str], timeout_s: float) -> bool:
    """Wait until no partition folder of `topics` is left (a deleted one is first renamed
    `<topic>-<partition>.<id>-delete`, then removed after log.segment.delete.delay.ms)."""
    pattern = re.compile("(?:" + "|".join(re.escape(t) for t in topics) + r")-\d+(\..*-delete)?")
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in data_dir.glob("*") if pattern.fullmatch(p.name)]
        if not left:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def log_tail(cfg: BrokerConfig, lines: int = 30) -> str:
    text = ""
    for path in (cfg.log_file, cfg.directory / "stdout.log"):
        with contextlib.suppress(OSError):
            text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    return text.strip() or "(the broker wrote no log)"


@contextlib.contextmanager
def _start_lock(cfg: BrokerConfig) -> Iterator[None]:
    cfg.directory.mkdir(parents=True, exist_ok=True)
    with open(cfg.directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def new_cluster_id() -> str:
    """A Kafka cluster id (url-safe base64 of a random UUID). Like Kafka's Uuid.randomUuid(), never
    one starting with '-', which command-line parsers take for an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_storage(cfg: BrokerConfig, libs: Path,
                    credentials: broker_security.Credentials | None = None) -> bool:
    """Format a new data folder (with the SCRAM users of a secured broker); False if it was."""
    if (cfg.data_dir / "meta.properties").exists():
        return False
    users = broker_security.scram_arguments(credentials) if credentials is not None else []
    cmd = _java_cmd(cfg, libs, "kafka.tools.StorageTool", "format",
                    f"--cluster-id={cfg.cluster_id or new_cluster_id()}",
                    f"--config={cfg.directory / 'server.properties'}", *users)  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        # the output may echo the users' passwords: say what failed, not what it was given
        raise BrokerError(f"Formatting the broker storage failed (exit {proc.returncode}); "
                          f"see {cfg.directory}")
    return True


def start(
    cfg: BrokerConfig | None = None,
    timeout_s: float = 90.0,
    echo: Callable[[str], None] = print,
) -> tuple[str, bool]:
    """Start the broker (or find it running); return (bootstrap address, whether we started it)."""
    cfg = cfg or BrokerConfig.from_env()
    with _start_lock(cfg):
        pid = running_pid(cfg)
        if pid is not None:
            _wait_ready(cfg, pid, timeout_s)
            return cfg.bootstrap, False
        _require_tools()
        for port in (cfg.port, cfg.controller_port) if cfg.controller else (cfg.port,):
            if _port_in_use(port):
                raise BrokerError(
                    f"Port {port} on {HOST} is taken by another process. Stop it, or choose other "
                    "ports with LEADSTAGE_BROKER_PORT / LEADSTAGE_BROKER_CONTROLLER_PORT."
                )
        libs = resolve_jars(echo)
        cfg.directory.mkdir(parents=True, exist_ok=True)
        credentials = _credentials(cfg) if cfg.secure else None
        properties = cfg.directory / "server.properties"
        properties.touch(mode=0o600, exist_ok=True)  # holds the admin's and the TLS password
        properties.chmod(0o600)
        properties.write_text(_server_properties(cfg, credentials))
        (cfg.directory / "log4j2.properties").write_text(_log4j2_properties(cfg))
        formatted = _format_storage(cfg, libs, credentials)
        cmd = _java_cmd(cfg, libs, "kafka.Kafka", str(cfg.directory / "server.properties"))
        with open(cfg.directory / "stdout.log", "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=cfg.directory,
            )  # fmt: skip
        cfg.pid_file.write_text(f"{proc.pid}\n")
        echo(f"Started Kafka {kafka_version()} (pid {proc.pid}), log: {cfg.log_file}")
        try:
            _wait_ready(cfg, proc.pid, timeout_s)
            if credentials is not None:
                if formatted:
                    broker_security.grant(cfg.bootstrap, credentials, echo=echo)
                echo(f"SASL_SSL ({broker_security.MECHANISM}); settings for each principal in "
                     f"{cfg.clients_dir}/<principal>.env")
        except (BrokerError, RuntimeError) as exc:
            _terminate(proc.pid, grace_s=10)
            cfg.pid_file.unlink(missing_ok=True)
            if isinstance(exc, BrokerError):
                raise
            raise BrokerError(str(exc)) from None
        return cfg.bootstrap, True


def cluster_configs(directory: Path, port: int, size: int = 3) -> list[BrokerConfig]:
    """A cluster of `size` nodes on 127.0.0.1, each in its own folder under `directory`: node
    i (from 1) takes client port `port + 2 (i - 1)`; node 1 is also the controller, on
    `port + 1`. For trying replication on one machine (the fault suite kills one of three)."""
    cluster_id = new_cluster_id()
    return [BrokerConfig(port=port + 2 * i, controller_port=port + 2 * i + 1,
                         directory=directory / f"node-{i + 1}", heap="384m", node_id=i + 1,
                         cluster_size=size, quorum_port=port + 1, cluster_id=cluster_id)
            for i in range(size)]


def start_cluster(configs: list[BrokerConfig], timeout_s: float = 90.0,
                  echo: Callable[[str], None] = print) -> tuple[str, bool]:
    """Start the nodes of cluster_configs, or a single broker's one config (or find them
    running), the controller first; the bootstrap list of all, and whether any node was
    started. A node that fails to start stops the ones this call started before it."""
    started: list[BrokerConfig] = []
    try:
        for cfg in configs:
            if start(cfg, timeout_s, echo)[1]:
                started.append(cfg)
    except BaseException:
        stop_cluster(started)
        raise
    return ",".join(cfg.bootstrap for cfg in configs), bool(started)


def stop_cluster(configs: list[BrokerConfig], grace_s: float = 30.0) -> int:
    """Stop the nodes, the controller last: a broker's controlled shutdown asks it to move
    the broker's leaderships first. How many were running."""
    return sum(stop(cfg, grace_s) for cfg in sorted(configs, key=lambda c: -c.node_id))


def _credentials(cfg: BrokerConfig) -> broker_security.Credentials:
    """A secured broker's credentials: those it was formatted with, or new ones."""
    if (cfg.data_dir / "meta.properties").exists():
        known = broker_security.credentials_from(cfg.directory)
        if known is not None:
            return known
        raise BrokerError(f"{cfg.data_dir} was formatted without the credentials in "
                          f"{cfg.clients_dir}; remove {cfg.directory} to start afresh")
    credentials = broker_security.new_credentials(cfg.directory)
    broker_security.remember_tls_password(cfg.directory, credentials)
    broker_security.write_client_files(cfg.clients_dir, cfg.bootstrap, credentials)
    return credentials


def _admin_security(cfg: BrokerConfig) -> dict[str, Any]:
    if not cfg.secure:
        return {}
    credentials = broker_security.credentials_from(cfg.directory)
    return broker_security.client_kwargs(credentials) if credentials is not None else {}


def _wait_ready(cfg: BrokerConfig, pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    security = _admin_security(cfg)
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            raise BrokerError(f"The broker exited during start-up. Log tail:\n{log_tail(cfg)}")
        if accepts_clients(cfg.bootstrap, timeout_s=3, **security):
            return
        time.sleep(0.5)
    raise BrokerError(
        f"The broker did not accept clients within {timeout_s:.0f}s. Log tail:\n{log_tail(cfg)}"
    )


def _terminate(pid: int, grace_s: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.1)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def stop(cfg: BrokerConfig | None = None, grace_s: float = 30.0) -> bool:
    """Stop the broker this folder started, by its pid; True if one was running."""
    cfg = cfg or BrokerConfig.from_env()
    pid = running_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    _terminate(pid, grace_s)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def status(cfg: BrokerConfig | None = None) -> tuple[int | None, bool]:
    """(pid of our broker or None, whether it accepts clients)."""
    cfg = cfg or BrokerConfig.from_env()
    pid = running_pid(cfg)
    return pid, pid is not None and accepts_clients(cfg.bootstrap, timeout_s=3,
                                                    **_admin_security(cfg))
