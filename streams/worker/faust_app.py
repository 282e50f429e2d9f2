"""The `faust -A streams.worker.faust_app worker` target (what `leadstage worker` runs): the
worker built from the environment (DESIGN §8). Definitions that fail the checker stop it here,
with the checker's message and exit status 2."""

from __future__ import annotations

import sys

from streams.adapters.settings import Settings
from streams.worker.assembly import DefinitionsRefused, LeadstageApp, build, settle_memory


def load() -> LeadstageApp:
    try:
        assembly = build(Settings.from_env())
    except DefinitionsRefused as exc:
        print(f"leadstage worker: refusing to start.\n{exc}", file=sys.stderr)
        sys.exit(2)
    settle_memory()
    return assembly.app


app = load()
