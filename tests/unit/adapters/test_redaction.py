"""No log level may show a secret: not even kafka-python's own DEBUG dump of its config."""

from __future__ import annotations

import io
import logging

from streams.adapters.producer import producer_config
from streams.adapters.redaction import MASK, protect
from streams.adapters.settings import Settings

SECRET = "pa55-w0rd-never-logged"


def test_a_library_logging_its_config_at_debug_shows_no_password():
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                  "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                                  "KAFKA_SASL_USERNAME": "leadstage",
                                  "KAFKA_SASL_PASSWORD": SECRET,
                                  "LEADSTAGE_API_TOKEN": "tok-abcdef-123"})
    protect(settings)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    library = logging.getLogger("kafka.admin.client")
    library.addHandler(handler)
    library.setLevel(logging.DEBUG)
    try:
        # what kafka-python's KafkaAdminClient logs when it starts
        library.debug("Starting KafkaAdminClient with configuration: %s",
                      producer_config(settings))
        library.warning("token %s in an f-string", "tok-abcdef-123")
        logging.getLogger("elsewhere").addHandler(handler)
        logging.getLogger("elsewhere").error(f"boom {SECRET}")
    finally:
        library.removeHandler(handler)
        logging.getLogger("elsewhere").removeHandler(handler)
    text = out.getvalue()
    assert SECRET not in text and "tok-abcdef-123" not in text
    assert text.count(MASK) == 3 and "sasl_plain_username" in text
