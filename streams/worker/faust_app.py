"""The `faust -A streams.worker.faust_app worker` target (what `leadstage worker` runs): the
worker built from the environment (DESIGN §8). Definitions that fail the checker stop it here,
with the checker's message and exit status 2."""

from __future__ import annotations

import sys

from streams.adapters.redaction import protect
from streams.adapters.settings import Settings
from streams.worker.assembly import DefinitionsRefused, LeadstageApp, build
from streams.worker.garbage import settle_memory


def load() -> LeadstageApp:
    settings = Settings.from_env()
    protect(settings)  # no log line shows a password or token, at any level
    try:
        assembly = build(settings)
    except DefinitionsRefused as exc:
        print(f"leadstage worker: refusing to start.\n{exc}", file=sys.stderr)
        sys.exit(2)
    settle_memory()
    return assembly.app


app = load()
