"""The `leadstage` command line (DESIGN §7)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from streams.adapters.redaction import protect
from streams.adapters.settings import Settings
from streams.core.definitions.compiler import CompiledDefinitions
from streams.tools import broker as local_broker
from streams.tools.terminal import printable, shown

#: `leadstage produce --give-up-after`'s default, in seconds: a run against a broker that stopped
#: answering ends within about twice this and 10 s (tools/produce.py says why).
PRODUCE_GIVE_UP_S = 20


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """leadstage: objective lead stages, live from Kafka."""
    if ctx.invoked_subcommand not in ("definitions", "broker", "generate"):
        try:  # settings no command may misread (e.g. a misspelt security protocol)
            settings = Settings.from_env()
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        protect(settings)  # no log line shows a password or token, at any level


@main.group()
def broker() -> None:
    """The local KRaft Apache Kafka broker (jars from Maven Central), or a small cluster."""


NODES = click.option("--nodes", default=1, show_default=True, type=click.IntRange(1, 9),
                     help="A local cluster of this many brokers (default port 9292, folder "
                          ".cache/broker-cluster; node i on port + 2(i - 1), node 1 also the "
                          "controller), to try LEADSTAGE_REPLICATION_FACTOR and a lost broker.")


def _broker_configs(secure: bool, nodes: int) -> list[local_broker.BrokerConfig]:
    try:
        cfg = local_broker.BrokerConfig.from_env(secure=secure, nodes=nodes)
    except local_broker.BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if nodes == 1:
        return [cfg]
    return local_broker.cluster_configs(cfg.directory, cfg.port, nodes)


@broker.command("start")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for clients.")
@click.option("--secure", is_flag=True,
              help="SASL_SSL with SCRAM-SHA-512, TLS and ACLs (default port 9192); each "
                   "principal's settings go to <broker dir>/clients/<principal>.env.")
@NODES
def broker_start(timeout: float, secure: bool, nodes: int) -> None:
    """Start the broker (or find it running) and print its bootstrap address last."""
    configs = _broker_configs(secure, nodes)

    def echo(message: str) -> None:
        click.echo(message, err=True)

    try:
        address, started = local_broker.start_cluster(configs, timeout, echo)
    except local_broker.BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not started:
        click.echo("The broker is already running." if nodes == 1 else
                   "The cluster is already running.", err=True)
    click.echo(address)


@broker.command("stop")
@click.option("--secure", is_flag=True, help="The secured broker.")
@NODES
def broker_stop(secure: bool, nodes: int) -> None:
    """Stop the broker (or cluster) started from this checkout, by its process ids."""
    if local_broker.stop_cluster(_broker_configs(secure, nodes)):
        click.echo("Broker stopped." if nodes == 1 else "Cluster stopped.")
    else:
        click.echo("No broker of ours was running.")


@broker.command("status")
@click.option("--secure", is_flag=True, help="The secured broker.")
@NODES
def broker_status(secure: bool, nodes: int) -> None:
    """Say whether the broker (every node) runs and accepts clients (exit 0 only if so)."""
    all_ready = True
    for cfg in _broker_configs(secure, nodes):
        pid, ready = local_broker.status(cfg)
        node = f"node {cfg.node_id}: " if nodes > 1 else ""
        if pid is None:
            click.echo(f"{node}stopped")
            all_ready = False
            continue
        click.echo(f"{node}{'running' if ready else 'starting'} (pid {pid}) on {cfg.bootstrap}")
        all_ready = all_ready and ready
    sys.exit(0 if all_ready else 1)


@main.group()
def definitions() -> None:
    """The agreed lead-stage definitions: check them, compare them."""


def _definitions_path(file: str | None) -> Path:
    if file:
        return Path(file)
    return Path(os.environ.get("LEADSTAGE_DEFINITIONS") or Settings().definitions)


@definitions.command("check")
@click.argument("file", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def definitions_check(file: str | None, fmt: str) -> None:
    """Prove FILE gives every lead in the population exactly one stage (exit 1 if not).

    FILE defaults to $LEADSTAGE_DEFINITIONS, else definitions/lead-stages.yaml.
    """
    from rich.console import Console

    from streams.core.definitions.checker import check
    from streams.core.definitions.loader import DefinitionsError, load_file
    from streams.tools.definitions_report import as_json, print_report

    path = _definitions_path(file)
    result, problems = None, []
    try:
        result = check(load_file(path))
    except DefinitionsError as exc:
        problems = exc.problems
    if fmt == "json":
        click.echo(json.dumps(as_json(str(path), result, problems), indent=2))
    else:
        print_report(Console(), str(path), result, problems)
    sys.exit(0 if result is not None and result.valid else 1)


def _checked_or_exit(path: Path) -> CompiledDefinitions:
    """Compiled definitions, or exit 1 with the checker's report."""
    from streams.core.definitions.checker import load_checked
    from streams.core.definitions.compiler import compile_definitions

    definitions, problem = load_checked(str(path))
    if definitions is None:
        click.echo(problem, err=True)
        sys.exit(1)
    return compile_definitions(definitions)


@definitions.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--events", "events_file", required=True, help="JSON-lines file of events.")
@click.option("--at", default=None, help="Evaluation time (ISO-8601); default: latest event.")
@click.option("--show-leads", is_flag=True, help="List the lead ids of each move.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def definitions_diff(old: str, new: str, events_file: str, at: str | None, show_leads: bool,
                     fmt: str) -> None:
    """What-if: how many leads would move between stages if NEW replaced OLD."""
    import time

    from rich.console import Console
    from rich.table import Table

    from streams.core.whatif import diff
    from streams.wire.json_lines import normalize, parse_line
    from streams.wire.validation import InvalidEvent

    old_c, new_c = _checked_or_exit(Path(old)), _checked_or_exit(Path(new))
    rejected = 0

    def events() -> Iterator[dict[str, Any]]:
        nonlocal rejected
        with open(events_file, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        yield parse_line(line)
                    except InvalidEvent:
                        rejected += 1

    when = None
    if at is not None:
        when = normalize({"event_id": "-", "lead_id": "-", "activity": "CONTACTED",
                          "occurred_at": at})["occurred_at"]
    started = time.perf_counter()
    result = diff(old_c, new_c, events(), when)
    seconds = time.perf_counter() - started
    if fmt == "json":
        doc = result.as_dict(show_leads)
        doc["rejected_lines"] = rejected
        click.echo(json.dumps(doc, indent=2))
        return
    from streams.core.calendar import format_timestamp

    console = Console()
    table = Table(title=f"{shown(old)} -> {shown(new)}, evaluated at "
                        f"{format_timestamp(result.at)}")
    table.add_column("stage under OLD")
    table.add_column("stage under NEW")
    table.add_column("leads", justify="right")
    if show_leads:
        table.add_column("lead ids")
    for row in result.as_dict(show_leads)["pairs"]:
        cells = [shown(row["from"] or "(not staged)"), shown(row["to"] or "(not staged)"),
                 str(row["leads"])]
        if show_leads:
            cells.append(shown(", ".join(row["lead_ids"][:50]))
                         + (" ..." if row["leads"] > 50 else ""))
        style = None if row["from"] == row["to"] else "bold yellow"
        table.add_row(*cells, style=style)
    console.print(table)
    moved = sum(len(v) for v in result.changed().values())
    console.print(f"{moved} of {result.leads} leads would change stage; {result.events} events "
                  f"replayed in {seconds:.2f}s ({result.events / max(seconds, 1e-9):,.0f}/s)"
                  + (f"; {rejected} invalid lines skipped" if rejected else ""), highlight=False)


@main.command()
@click.option("--leads", default=1000, show_default=True, help="How many leads.")
@click.option("--days", default=120, show_default=True, help="Over how many past days.")
@click.option("--seed", default=1, show_default=True)
@click.option("--out", "out", required=True, help="JSON-lines file to write.")
def generate(leads: int, days: int, seed: int, out: str) -> None:
    """Write a realistic synthetic history of lead activity (JSON lines)."""
    import time

    from streams.core.definitions.compiler import compile_definitions
    from streams.core.definitions.loader import load_file
    from streams.tools.generator import Generator, as_json

    compiled = compile_definitions(load_file(Settings.from_env().definitions))
    events = list(Generator(compiled, seed).history(leads, days, int(time.time() * 1000)))
    events.sort(key=lambda e: e["occurred_at"])
    with open(out, "w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(as_json(event)) + "\n")
    click.echo(f"wrote {len(events)} events for {leads} leads to {out}", err=True)


@main.command()
@click.argument("lead_id")
@click.option("--url", default=None, help="Worker URL (default from LEADSTAGE_WEB_HOST/PORT).")
def lead(lead_id: str, url: str | None) -> None:
    """Show a lead's current stage, since when, why, and recent changes (from a worker)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from rich.console import Console
    from rich.table import Table

    settings = Settings.from_env()
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    request = urllib.request.Request(f"{base}/leads/{urllib.parse.quote(lead_id, safe='')}")
    if settings.api_token:
        request.add_header("Authorization", f"Bearer {settings.api_token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            click.echo(f"No lead {printable(lead_id)!r}: the worker does not know it (or it was "
                       "erased).", err=True)
        elif exc.code == 401:
            click.echo("The worker wants a token: set LEADSTAGE_API_TOKEN.", err=True)
        else:
            click.echo(f"The worker at {base} answered {exc.code}.", err=True)
        sys.exit(1)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"No worker answers at {base} ({getattr(exc, 'reason', exc)}). Is "
                   "`leadstage worker` running?", err=True)
        sys.exit(2)
    console = Console()
    console.print(f"[bold]{shown(doc['lead_id'])}[/]: [bold]{shown(doc['stage'] or 'not staged')}"
                  f"[/] since {shown(doc.get('since'))} (change #{shown(doc.get('sequence'))}, "
                  f"definitions v{shown(doc.get('definitions_version'))})", highlight=False)
    console.print(f"why: {shown(doc.get('reason') or doc.get('problem'))}", highlight=False)
    table = Table(title="recent changes")
    for column in ("#", "when", "from", "to", "cause"):
        table.add_column(column)
    for change in doc.get("recent_changes", []):
        table.add_row(shown(change["sequence"]), shown(change["changed_at"]),
                      shown(change["previous_stage"] or "-"), shown(change["stage"] or "-"),
                      shown(change["cause"]))
    console.print(table)


@main.command()
def topics() -> None:
    """Create the application's topics if they are missing (as the worker does on start)."""
    from streams.adapters.kafka_probe import diagnose
    from streams.adapters.topics import KafkaRefused, prepare_topics

    settings = Settings.from_env()
    problem = diagnose(settings)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    try:
        created, warnings = prepare_topics(settings)
    except KafkaRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command()
@click.option("--duration", type=float, default=None, help="Seconds to run (default: Ctrl-C).")
@click.option("--leads", default=500, show_default=True, help="Leads in the backfilled history.")
@click.option("--secure", is_flag=True,
              help="On the secured local broker (SASL_SSL), each part as its own principal.")
def demo(duration: float | None, leads: int, secure: bool) -> None:
    """Run broker, worker and synthetic producers with a live view; stop them all at the end."""
    from streams.tools.demo import run

    sys.exit(run(duration, leads, secure=secure))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                               "help_option_names": []})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Faust worker (Faust's worker options pass through, e.g. -l info)."""
    from streams.worker.faust_app import app

    sys.argv = ["leadstage worker", "worker", *ctx.args]
    app.main()


@main.command()
@click.option("--file", "file", required=True,
              help="JSON-lines file of LeadActivity events (- for standard input).")
@click.option("--topic", default=None, help="Topic (default $LEADSTAGE_TOPIC_ACTIVITY).")
@click.option("--give-up-after", "give_up_s", default=PRODUCE_GIVE_UP_S, show_default=True,
              type=click.IntRange(min=1, max=3600),
              help="Seconds to wait for Kafka to take or acknowledge records before giving up "
                   "(a run against a dead broker ends within about twice this and 10 s).")
def produce(file: str, topic: str | None, give_up_s: int) -> None:
    """Validate, encode and send lead activities; bad lines are reported and not sent."""
    from streams.tools.produce import run

    sys.exit(run(file, topic, give_up_s))


@main.command()
@click.option("--url", required=True, help="The webhook to POST each change to.")
@click.option("--stage", "stages", multiple=True,
              help="Forward only changes to this stage (repeatable; `none` for leaving).")
@click.option("--cause", "causes", multiple=True,
              type=click.Choice(["EVENT", "TIME", "DEFINITIONS"]),
              help="Forward only changes of this cause (repeatable).")
@click.option("--template", type=click.Choice(["json", "slack"]), default="json",
              show_default=True, help="json: the change's fields; slack: {\"text\": ...}.")
@click.option("--group", default="leadstage-forward", show_default=True,
              help="Consumer group (one per webhook).")
@click.option("--concurrency", default=64, show_default=True,
              help="Requests under way at once, across leads.")
@click.option("--timeout", "timeout_s", default=10.0, show_default=True,
              help="Seconds before a request counts as failed (and is retried).")
@click.option("--dlq", default="lead-stage-changes-forward-dlq", show_default=True,
              help="Topic for changes the webhook refuses (4xx).")
def forward(url: str, stages: tuple[str, ...], causes: tuple[str, ...], template: str,
            group: str, concurrency: int, timeout_s: float, dlq: str) -> None:
    """POST every stage change to a webhook, signed, in order per lead (DESIGN §10)."""
    import asyncio
    import signal

    from streams.adapters.change_stream import ChangeStream
    from streams.adapters.topics import KafkaRefused
    from streams.tools.forwarder import ForwardConfig, serve

    secret = os.environ.get("LEADSTAGE_FORWARD_SECRET", "")
    if not secret:
        click.echo("error: set LEADSTAGE_FORWARD_SECRET: receivers verify the "
                   "Leadstage-Signature header with it", err=True)
        sys.exit(2)
    settings = Settings.from_env()
    config = ForwardConfig(url=url, secret=secret.encode(), topic=settings.topic_stage_changes,
                           dlq=dlq, group_id=group, stages=frozenset(stages),
                           causes=frozenset(causes), template=template,
                           concurrency=concurrency, timeout_s=timeout_s)
    host = os.environ.get("LEADSTAGE_FORWARD_HOST", "127.0.0.1")
    port = int(os.environ.get("LEADSTAGE_FORWARD_PORT", "6071"))

    async def run() -> BaseException | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stream = ChangeStream(group, settings.topic_stage_changes, settings)
        click.echo(f"forwarding {settings.topic_stage_changes} to {url}; metrics on "
                   f"http://{host}:{port}/metrics", err=True)
        return await serve(config, stream, host, port, stop)

    try:
        failure = asyncio.run(run())
    except KafkaRefused as exc:  # its dead-letter topic could not be created
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sys.exit(1 if failure is not None else 0)


@main.group(invoke_without_command=True)
@click.pass_context
def collect(ctx: click.Context) -> None:
    """Take events over HTTP from pages, CRMs and CDPs into Kafka (DESIGN §9).

    Without a subcommand: run the collector (LEADSTAGE_COLLECT_* variables, README)."""
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from streams.adapters.settings import CollectorSettings
    from streams.tools.collector.keys import KeysError
    from streams.tools.collector.server import run
    from streams.wire.connectors import ConnectorError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        collect_settings = CollectorSettings.from_env()
        run(Settings.from_env(), collect_settings)
    except (ValueError, KeysError, ConnectorError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@collect.group("key")
def collect_key() -> None:
    """Keys that producers present to the collector."""


@collect_key.command("add")
@click.option("--id", "key_id", required=True, help="A name for the key, e.g. website.")
@click.option("--source", type=click.Choice(["WEB", "CRM", "OTHER"]), required=True,
              help="The only source of events this key may write.")
@click.option("--kind", type=click.Choice(["server", "browser"]), required=True,
              help="browser keys are public: they work only from their --origin(s).")
@click.option("--origin", "origins", multiple=True,
              help="A site a browser key may be used from, e.g. https://www.example.com.")
def collect_key_add(key_id: str, source: str, kind: str, origins: tuple[str, ...]) -> None:
    """Add a key to the keys file and print its secret (shown this once only)."""
    from streams.adapters.settings import CollectorSettings
    from streams.tools.collector.keys import KeysError, add_key

    try:
        path = CollectorSettings.from_env().keys_file
        secret = add_key(path, key_id, source, kind, list(origins))
    except (ValueError, KeysError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"added key {key_id!r} ({kind}, {source}) to {path}; its secret, shown only "
               "now:", err=True)
    click.echo(secret)


@collect_key.command("remove")
@click.option("--id", "key_id", required=True, help="The key to revoke.")
def collect_key_remove(key_id: str) -> None:
    """Revoke a key (a running collector stops accepting it within a second)."""
    from streams.adapters.settings import CollectorSettings
    from streams.tools.collector.keys import KeysError, remove_key

    try:
        path = CollectorSettings.from_env().keys_file
        remove_key(path, key_id)
    except (ValueError, KeysError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"removed key {key_id!r} from {path}", err=True)


@collect_key.command("list")
def collect_key_list() -> None:
    """The keys: id, kind, source and origins (never a secret: none is stored)."""
    from streams.adapters.settings import CollectorSettings
    from streams.tools.collector.keys import KeysError, load_keys

    try:
        path = CollectorSettings.from_env().keys_file
        ring = load_keys(path)
    except (ValueError, KeysError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for key in ring.keys:
        origins = " ".join(sorted(key.origins))
        click.echo(f"{key.id}\t{key.kind}\t{key.source}\t{origins}".rstrip())


if __name__ == "__main__":
    main()
