import re
from pathlib import Path

import pytest

from streams.adapters.faust_settings import static_member_id
from streams.adapters.settings import Settings


def test_defaults_match_design():
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert (s.app_id, s.partitions, s.sweep_interval) == ("leadstage", 8, 60)
    assert (s.topic_activity, s.topic_stage_changes, s.topic_stages, s.topic_dlq) == (
        "lead-activity", "lead-stage-changes", "lead-stages", "lead-activity-dlq")
    assert (s.web_host, s.web_port) == ("127.0.0.1", 6066)
    assert s.definitions.parts[-2:] == ("definitions", "lead-stages.yaml")
    assert s.security.protocol == "PLAINTEXT"
    assert s.state_compression == "none"


def test_environment_overrides():
    s = Settings.from_env({
        "KAFKA_BOOTSTRAP_SERVERS": "a:1, b:2", "LEADSTAGE_PARTITIONS": "3",
        "LEADSTAGE_TOPIC_DLQ": "dead", "LEADSTAGE_DEFINITIONS": "/x/y.yaml",
        "LEADSTAGE_SWEEP_INTERVAL": "5", "LEADSTAGE_MAX_POLL_RECORDS": "5000",
    })
    assert s.bootstrap_list == ["a:1", "b:2"]
    assert (s.partitions, s.topic_dlq, s.sweep_interval) == (3, "dead", 5)
    assert s.max_poll_records == 5000
    assert s.definitions == Path("/x/y.yaml")


@pytest.mark.parametrize("value", ["zero", "0", "-2"])
@pytest.mark.parametrize("name", ["LEADSTAGE_PARTITIONS", "LEADSTAGE_MAX_POLL_RECORDS",
                                  "LEADSTAGE_FETCH_MAX_WAIT_MS"])
def test_bad_numbers_are_rejected_with_the_variable_name(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_a_fetch_wait_past_ten_seconds_is_refused():
    assert Settings.from_env({"LEADSTAGE_FETCH_MAX_WAIT_MS": "10000"}).fetch_max_wait_ms == 10_000
    with pytest.raises(ValueError, match="LEADSTAGE_FETCH_MAX_WAIT_MS must be at most 10000"):
        Settings.from_env({"LEADSTAGE_FETCH_MAX_WAIT_MS": "10001"})


@pytest.mark.parametrize(("raw", "expected"), [("lz4", "lz4"), (" ZSTD ", "zstd"),
                                               ("snappy", "snappy"), ("", "none")])
def test_state_compression_takes_the_names_rocksdb_is_built_with(raw, expected):
    assert Settings.from_env({"LEADSTAGE_STATE_COMPRESSION": raw}).state_compression == expected


@pytest.mark.parametrize("raw", ["gzip", "lz4hc", "bz2", "none,lz4"])
def test_an_unknown_state_compression_is_refused_with_the_choices(raw):
    with pytest.raises(ValueError, match="LEADSTAGE_STATE_COMPRESSION must be one of none, lz4, "
                                         "snappy, zstd"):
        Settings.from_env({"LEADSTAGE_STATE_COMPRESSION": raw})


def test_password_never_in_repr():
    s = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM":
                           "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u",
                           "KAFKA_SASL_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(s)
    assert s.security.protocol == "SASL_SSL"
    assert s.security.kafka_python_kwargs()["sasl_plain_password"] == "hunter2-secret"


def test_web_bind_defaults_to_the_web_host_and_can_differ():
    assert Settings.from_env({}).web_bind == "127.0.0.1"
    s = Settings.from_env({"LEADSTAGE_WEB_HOST": "worker-1", "LEADSTAGE_WEB_BIND": "0.0.0.0"})
    assert (s.web_host, s.web_bind) == ("worker-1", "0.0.0.0")


def test_https_for_the_worker_pages_takes_a_certificate_and_key(tmp_path):
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "worker")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    settings = Settings.from_env({"LEADSTAGE_WEB_TLS_CERT": str(tmp_path / "c.pem"),
                                  "LEADSTAGE_WEB_TLS_KEY": str(tmp_path / "k.pem")})
    context = settings.web_tls_context()
    assert isinstance(context, ssl.SSLContext) and context.protocol == ssl.PROTOCOL_TLS_SERVER
    assert Settings.from_env({}).web_tls_context() is None
    with pytest.raises(ValueError, match="go together"):
        Settings.from_env({"LEADSTAGE_WEB_TLS_CERT": str(tmp_path / "c.pem")}).web_tls_context()


def test_an_instance_id_turns_on_static_membership_and_is_checked_as_kafka_would():
    assert Settings.from_env({}).instance_id is None
    assert Settings.from_env({"LEADSTAGE_INSTANCE_ID": " "}).instance_id is None
    assert Settings.from_env({"LEADSTAGE_INSTANCE_ID": "worker-1"}).instance_id == "worker-1"
    assert Settings.from_env({"LEADSTAGE_INSTANCE_ID": "a" * 240}).instance_id == "a" * 240
    for bad in ("a" * 241, "worker 1", "pod/1", ".", "..", "wörker"):
        with pytest.raises(ValueError, match="LEADSTAGE_INSTANCE_ID"):
            Settings.from_env({"LEADSTAGE_INSTANCE_ID": bad})


def test_the_static_member_id_changes_with_the_address_the_assignment_names():
    one = static_member_id("worker-1", "http://10.0.0.7:6066")
    assert one == static_member_id("worker-1", "http://10.0.0.7:6066")  # a restart: same member
    assert one.startswith("worker-1-")
    assert one != static_member_id("worker-1", "http://10.0.0.8:6066")  # moved: a new member
    assert one != static_member_id("worker-1", "http://10.0.0.7:6067")
    longest = static_member_id("a" * 240, "http://h:1")
    assert len(longest) <= 249 and re.fullmatch(r"[A-Za-z0-9._-]+", longest)


def test_the_changelog_segment_size_stays_within_what_kafka_takes():
    # Kafka 4 refuses a topic whose segment.bytes is under 1 MiB or past an int32: the worker
    # would fail creating its changelog; the setting says so at start-up instead.
    assert Settings.from_env({}).changelog_segment_bytes == 64 * 2**20
    assert Settings.from_env({"LEADSTAGE_CHANGELOG_SEGMENT_BYTES": "1048576"}
                             ).changelog_segment_bytes == 2**20
    with pytest.raises(ValueError, match="LEADSTAGE_CHANGELOG_SEGMENT_BYTES must be at least "
                                         "1048576, got 1048575"):
        Settings.from_env({"LEADSTAGE_CHANGELOG_SEGMENT_BYTES": "1048575"})
    with pytest.raises(ValueError, match="LEADSTAGE_CHANGELOG_SEGMENT_BYTES must be at most "
                                         "2147483647"):
        Settings.from_env({"LEADSTAGE_CHANGELOG_SEGMENT_BYTES": "2147483648"})


def test_replication_is_the_broker_s_unless_set():
    s = Settings.from_env({})
    assert (s.replication_factor, s.min_insync_replicas) == (None, None)
    s = Settings.from_env({"LEADSTAGE_REPLICATION_FACTOR": "3",
                           "LEADSTAGE_MIN_INSYNC_REPLICAS": "2"})
    assert (s.replication_factor, s.min_insync_replicas) == (3, 2)


@pytest.mark.parametrize(("env", "words"), [
    ({"LEADSTAGE_REPLICATION_FACTOR": "0"}, "LEADSTAGE_REPLICATION_FACTOR must be positive"),
    ({"LEADSTAGE_REPLICATION_FACTOR": "-1"}, "LEADSTAGE_REPLICATION_FACTOR must be positive"),
    ({"LEADSTAGE_REPLICATION_FACTOR": "three"}, "LEADSTAGE_REPLICATION_FACTOR must be a whole"),
    ({"LEADSTAGE_REPLICATION_FACTOR": "32768"},  # an int16 on the wire
     "LEADSTAGE_REPLICATION_FACTOR must be at most 32767"),
    ({"LEADSTAGE_MIN_INSYNC_REPLICAS": "2"},
     "LEADSTAGE_MIN_INSYNC_REPLICAS needs LEADSTAGE_REPLICATION_FACTOR"),
    # the broker takes this topic, and then refuses every acks=all write to it
    ({"LEADSTAGE_REPLICATION_FACTOR": "2", "LEADSTAGE_MIN_INSYNC_REPLICAS": "3"},
     "LEADSTAGE_MIN_INSYNC_REPLICAS=3 is more than LEADSTAGE_REPLICATION_FACTOR=2"),
])
def test_replication_that_kafka_would_refuse_or_that_would_refuse_every_write_is_refused(
        env, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env(env)
