"""The `leadstage` command line (DESIGN §7)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from streams import broker as local_broker
from streams.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """leadstage: objective lead stages, live from Kafka."""


@main.group()
def broker() -> None:
    """The local single-node KRaft Apache Kafka broker (jars from Maven Central)."""


@broker.command("start")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for clients.")
def broker_start(timeout: float) -> None:
    """Start the broker (or find it running) and print its bootstrap address last."""
    cfg = local_broker.BrokerConfig.from_env()
    try:
        address, started = local_broker.start(
            cfg, timeout_s=timeout, echo=lambda m: click.echo(m, err=True)
        )
    except local_broker.BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not started:
        click.echo("The broker is already running.", err=True)
    click.echo(address)


@broker.command("stop")
def broker_stop() -> None:
    """Stop the broker started from this checkout, by its process id."""
    if local_broker.stop():
        click.echo("Broker stopped.")
    else:
        click.echo("No broker of ours was running.")


@broker.command("status")
def broker_status() -> None:
    """Say whether the broker runs and accepts clients (exit 0 only if it does)."""
    cfg = local_broker.BrokerConfig.from_env()
    pid, ready = local_broker.status(cfg)
    if pid is None:
        click.echo("stopped")
        sys.exit(1)
    click.echo(f"{'running' if ready else 'starting'} (pid {pid}) on {cfg.bootstrap}")
    sys.exit(0 if ready else 1)


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

    from streams.definitions.checker import check
    from streams.definitions.loader import DefinitionsError, load_file
    from streams.definitions_report import as_json, print_report

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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                               "help_option_names": []})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Faust worker (Faust's worker options pass through, e.g. -l info)."""
    from streams.app import app

    sys.argv = ["leadstage worker", "worker", *ctx.args]
    app.main()


@main.command()
@click.option("--file", "file", required=True, help="JSON-lines file of LeadActivity events.")
@click.option("--topic", default=None, help="Topic (default $LEADSTAGE_TOPIC_ACTIVITY).")
def produce(file: str, topic: str | None) -> None:
    """Validate, encode and send lead activities; bad lines are reported and not sent."""
    from streams.produce_command import run

    sys.exit(run(file, topic))


if __name__ == "__main__":
    main()
