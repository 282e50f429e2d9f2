"""`leadstage produce --file FILE.jsonl [--topic T]`: validate, encode and send every line."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from streams.adapters.kafka_probe import diagnose
from streams.adapters.producer import LeadActivityProducer
from streams.adapters.settings import Settings
from streams.wire.json_lines import parse_line
from streams.wire.validation import InvalidEvent


@dataclass
class ProduceSummary:
    sent: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    undelivered: int = 0
    #: the first line not sent at all, after Kafka stopped taking records
    stopped_at: int | None = None


#: A line longer than this cannot hold a valid event (whole records are at most 256 KiB); it is
#: rejected and skipped without being held in memory.
MAX_LINE_BYTES = 1 << 20


def lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """The file's lines, each at most MAX_LINE_BYTES; None in place of a longer one."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 16)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the overlong line
            yield None
            continue
        yield raw


def produce_file(path: Path | None, topic: str | None, settings: Settings, give_up_ms: int,
                 err: TextIO = sys.stderr, progress: bool = True) -> ProduceSummary:
    """Send the lines of `path` (None: standard input). A broker that stops answering mid-file
    fails the run instead of hanging: no send blocks, no record waits and no flush lasts longer
    than `give_up_ms`, so the run ends within about twice that and 10 s."""
    summary = ProduceSummary()
    errors: list[Exception] = []
    acknowledged: list[int] = []
    handed = 0
    name = str(path) if path is not None else "-"

    def failed(exc: Exception) -> None:
        errors.append(exc)

    def delivered(_: object) -> None:
        acknowledged.append(1)

    size = path.stat().st_size if path is not None else 0
    console = Console(file=err)
    source = path.open("rb") if path is not None else contextlib.nullcontext(sys.stdin.buffer)
    producer = LeadActivityProducer(settings, topic=topic, delivery_timeout_ms=give_up_ms,
                                    max_block_ms=give_up_ms, request_timeout_ms=give_up_ms // 3)
    with contextlib.closing(_Closing(producer)), source as handle, \
            Progress(TextColumn("sending"), BarColumn(), TransferSpeedColumn(),
                     TextColumn("{task.fields[lines]} lines"), console=console,
                     transient=True, disable=not progress or size < 1_000_000) as bar:
        task = bar.add_task("produce", total=size, lines=0)
        for number, raw in enumerate(lines(handle), start=1):
            if number % 5000 == 0 and path is not None:
                bar.update(task, completed=handle.tell(), lines=number)
            if raw is None:
                summary.rejected.append((number, "too long"))
                print(f"{name}:{number}: rejected: the line is longer than {MAX_LINE_BYTES} "
                      "bytes", file=err)
                continue
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                summary.rejected.append((number, "not valid UTF-8"))
                print(f"{name}:{number}: rejected: the line is not valid UTF-8 (byte "
                      f"{exc.start + 1})", file=err)
                continue
            if not line:
                continue
            try:
                key, value = producer.encode_record(parse_line(line))
            except InvalidEvent as exc:
                summary.rejected.append((number, str(exc)))
                print(f"{name}:{number}: rejected: {exc}", file=err)
                continue
            try:
                producer.send_encoded(key, value).add_callback(delivered).add_errback(failed)
            except KafkaError as exc:  # Kafka stopped taking records: send nothing more
                summary.stopped_at = number
                print(f"{name}:{number}: not sent, nor any line after it: Kafka did not take "
                      f"it within {give_up_ms / 1000:g} s ({type(exc).__name__})", file=err)
                break
            handed += 1
        # whatever is not acknowledged by then counts as not delivered
        with contextlib.suppress(KafkaError):
            producer.flush(timeout_s=give_up_ms / 1000 + 5)
    summary.sent = len(acknowledged)
    summary.undelivered = handed - summary.sent
    summary.sent -= len(errors)
    if errors:
        kinds = sorted({type(e).__name__ for e in errors})
        print(f"{len(errors)} line(s) were not delivered: {', '.join(kinds)}", file=err)
    return summary


#: Kafka's error codes for a topic that is not there, and one the principal may not see.
UNKNOWN_TOPIC, TOPIC_AUTHORIZATION_FAILED = 3, 29


def _missing_topic(settings: Settings, topic: str) -> str | None:
    """A sentence if Kafka cannot be reached, the principal may not use the topic, or the topic
    is missing (instead of a 60 s hang)."""
    from kafka import KafkaAdminClient

    problem = diagnose(settings)
    if problem is not None:
        return problem
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_list,
                                 request_timeout_ms=15_000, client_id="leadstage-produce",
                                 **settings.security.kafka_python_kwargs())
    except KafkaError as exc:
        return f"cannot reach Kafka at {settings.bootstrap_servers}: {type(exc).__name__}"
    try:
        (found,) = admin.describe_topics([topic])
    except KafkaError as exc:
        return f"Kafka at {settings.bootstrap_servers} refused: {type(exc).__name__}"
    finally:
        admin.close()
    if found["error_code"] == TOPIC_AUTHORIZATION_FAILED:
        who = settings.security.sasl_username or "this client"
        return (f"not authorized: principal {who!r} may not use topic {topic!r} "
                f"(TOPIC_AUTHORIZATION_FAILED at {settings.bootstrap_servers}; Kafka does not "
                "say whether a topic exists to a principal that may not see it)")
    if found["error_code"] == UNKNOWN_TOPIC:
        return (f"topic {topic!r} does not exist at {settings.bootstrap_servers}; "
                "start a worker (it creates its topics) or create it")
    return None


class _Closing:
    """Closes the producer without waiting on a broker that stopped answering."""

    def __init__(self, producer: LeadActivityProducer) -> None:
        self.producer = producer

    def close(self) -> None:
        self.producer.close(timeout_s=5)


def _not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a JSON-lines file, in words; None when it can."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a directory"
    if not path.is_file():
        return "is not a regular file (to read standard input, give - as the file)"
    return None


def run(file: str, topic: str | None, give_up_s: int) -> int:
    settings = Settings.from_env()
    path = None if file == "-" else Path(file)
    problem = None if path is None else _not_a_file(path)
    if problem:
        print(f"error: {file}: {problem}", file=sys.stderr)
        return 2
    target = topic or settings.topic_activity
    missing = _missing_topic(settings, target)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        summary = produce_file(path, topic, settings, progress=os.isatty(2),
                               give_up_ms=give_up_s * 1000)
    except KafkaError as exc:
        print(f"error: Kafka at {settings.bootstrap_servers}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    print(f"sent {summary.sent} to {target}, rejected {len(summary.rejected)}"
          + (f", not delivered {summary.undelivered}" if summary.undelivered else "")
          + (f", not sent from line {summary.stopped_at} on" if summary.stopped_at else ""),
          file=sys.stderr)
    failed = summary.rejected or summary.undelivered or summary.stopped_at
    return 1 if failed else 0
