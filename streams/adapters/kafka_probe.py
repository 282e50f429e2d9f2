"""One connection attempt that says why Kafka cannot be used, in a sentence: unreachable, TLS
not trusted, a plaintext client on a TLS port, or SASL authentication refused (naming user and
mechanism, never the password). kafka-python only reports a timeout after 30 s for all of them;
aiokafka's connection log names the cause within a second."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiokafka import AIOKafkaClient

from streams.adapters.change_stream import aiokafka_security
from streams.adapters.settings import Settings


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def explain(settings: Settings, reason: str) -> str:
    where = settings.bootstrap_servers
    security = settings.security
    if "SaslAuthenticationFailed" in reason or "Authentication failed" in reason:
        return (f"authentication failed at {where}: user {security.sasl_username!r} with "
                f"{security.sasl_mechanism} (wrong password, or no such user)")
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return (f"TLS: the certificate of {where} is not trusted (KAFKA_SSL_CAFILE="
                f"{security.ssl_cafile or 'the system CAs'})")
    if "WRONG_VERSION_NUMBER" in reason or ("closed" in reason and security.protocol in (
            "PLAINTEXT", "SASL_PLAINTEXT")):
        return (f"{where} closed the connection: it expects TLS, and "
                f"KAFKA_SECURITY_PROTOCOL is {security.protocol}")
    if "closed" in reason:
        return f"{where} closed the connection ({security.protocol}): {reason[:200]}"
    return f"no Kafka broker answers at {where}: {reason[:200]}"


async def _attempt(settings: Settings, timeout_s: float) -> str | None:
    capture = _Capture()
    logger = logging.getLogger("aiokafka")
    logger.addHandler(capture)
    client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_list,
                            request_timeout_ms=int(timeout_s * 1000),
                            client_id="leadstage-probe",
                            **aiokafka_security(settings.security))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return None
    except Exception as exc:
        reasons = [m for m in capture.messages if "Unable connect" in m] or [str(exc)]
        return explain(settings, reasons[-1])
    finally:
        logger.removeHandler(capture)
        await client.close()


def diagnose(settings: Settings, timeout_s: float = 10.0) -> str | None:
    """None when a client can connect and authenticate; else what is wrong, in words. Runs on
    a thread of its own: asyncio.run() on the caller's thread would close and unset that
    thread's event loop, under any Faust object already bound to it."""
    with ThreadPoolExecutor(1, thread_name_prefix="leadstage-probe") as pool:
        return pool.submit(asyncio.run, _attempt(settings, timeout_s)).result()
