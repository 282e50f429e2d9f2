"""Security settings reach both Kafka clients, credentials never leak, schemas hold no PII."""

from __future__ import annotations

import json
import ssl

import faust
import pytest

from streams.adapters.faust_settings import faust_app_kwargs, faust_credentials
from streams.adapters.producer import producer_config
from streams.adapters.settings import Settings
from tests.paths import SCHEMA_DIR

SCRAM = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
         "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "KAFKA_SASL_USERNAME": "leadstage", "KAFKA_SASL_PASSWORD": "pa55-w0rd-xyz"}


def test_sasl_scram_over_tls_reaches_faust():
    settings = Settings.from_env(SCRAM)
    kwargs = faust_app_kwargs(settings)
    assert kwargs["broker"] == "kafka://kafka-1:9093;kafka://kafka-2:9093"
    creds = kwargs["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == (
        "leadstage", "pa55-w0rd-xyz", "SCRAM-SHA-512")
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    assert creds.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_scram_over_tls_reaches_kafka_python():
    config = producer_config(Settings.from_env(SCRAM))
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "leadstage", "pa55-w0rd-xyz")
    assert config["bootstrap_servers"] == ["kafka-1:9093", "kafka-2:9093"]


def test_tls_only_with_a_ca_file(tmp_path):
    with pytest.raises(ValueError, match=r"KAFKA_SSL_CAFILE .* is not a readable file"):
        Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL",
                           "KAFKA_SSL_CAFILE": str(tmp_path / "missing-ca.pem")})
    plaintext = Settings.from_env({})
    assert faust_credentials(plaintext.security) is None
    assert producer_config(plaintext)["security_protocol"] == "PLAINTEXT"


@pytest.mark.parametrize(("env", "words"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "CARRIER_PIGEON"}, "must be one of"),
    # a typo once made `produce` send in plaintext and exit 0
    ({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL-SSL"}, "must be one of"),
    ({**SCRAM, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-999"}, "KAFKA_SASL_MECHANISM must be one of"),
    ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
])
def test_incomplete_or_unknown_security_settings_are_refused(env, words):
    with pytest.raises(ValueError) as caught:
        Settings.from_env(env)
    assert words in str(caught.value) and "pa55-w0rd-xyz" not in str(caught.value)


def test_no_credential_in_reprs_or_refusals():
    settings = Settings.from_env({**SCRAM, "LEADSTAGE_API_TOKEN": "tok-123-secret"})
    text = repr(settings) + repr(settings.security)
    assert "pa55-w0rd-xyz" not in text and "tok-123-secret" not in text
    with pytest.raises(ValueError) as caught:
        Settings.from_env({**SCRAM, "KAFKA_SASL_MECHANISM": ""})
    assert "pa55-w0rd-xyz" not in str(caught.value)


PII_WORDS = ("email", "e_mail", "mail", "name", "phone", "address", "ip", "birth", "ssn",
             "passport", "iban")


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("**/*.avsc")), ids=lambda p: p.name)
def test_no_personal_data_field_in_any_schema(path):
    def fields(node: object) -> list[str]:
        out: list[str] = []
        if isinstance(node, dict):
            if node.get("type") == "record":
                for f in node["fields"]:
                    out.append(f["name"])
                    out += fields(f["type"])
        elif isinstance(node, list):
            for item in node:
                out += fields(item)
        return out

    names = fields(json.loads(path.read_text()))
    assert names, path
    flagged = [n for n in names if any(w == part for w in PII_WORDS for part in n.split("_"))]
    assert not flagged, f"{path.name}: {flagged}"
