"""No log line, at any level, shows a secret: kafka-python, aiokafka and Faust log their
configuration at DEBUG (`'sasl_plain_password': ...`). `protect(settings)` replaces each
configured secret (the SASL password, the API token) in every log record created afterwards,
whichever library's logger made it. Records below a logger's level are never created, so this
costs nothing at INFO for debug-heavy libraries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from streams.adapters.settings import Settings

MASK = "***"
_protected: set[str] = set()


def protect_values(secrets: Iterable[str | None]) -> None:
    """Mask these values in every log record from now on (idempotent)."""
    new = {s for s in secrets if s and len(s) >= 4} - _protected
    if not new:
        return
    if not _protected:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a broken format string stays the logging module's problem
                return record
            if any(secret in message for secret in _protected):
                for secret in _protected:
                    message = message.replace(secret, MASK)
                record.msg, record.args = message, None
            return record

        logging.setLogRecordFactory(factory)
    _protected.update(new)


def protect(settings: Settings) -> None:
    protect_values([settings.security.sasl_password, settings.api_token])
