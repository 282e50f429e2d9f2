"""Where the files leadstage ships and keeps live.

In a checkout the schemas, definitions and connectors are the repository's `schemas/`,
`definitions/` and `connectors/`;
an installed wheel carries the same files under `streams/resources/` (pyproject maps them there),
so the schemas and the default definitions are found wherever the package is installed. Local
state (the broker's and the worker's `.cache/`) goes into the checkout when run from one, and
into the working directory otherwise.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # streams/
_CHECKOUT = PACKAGE_DIR.parent


def _shipped(name: str) -> Path:
    packaged = PACKAGE_DIR / "resources" / name
    return packaged if packaged.is_dir() else _CHECKOUT / name


@cache
def schema_dir() -> Path:
    """The folder of Avro schemas (`*.avsc`, and `history/<Record>/vN.avsc`)."""
    return _shipped("schemas")


@cache
def definitions_dir() -> Path:
    """The folder of the default definitions (`lead-stages.yaml`) and `examples/`."""
    return _shipped("definitions")


@cache
def connectors_dir() -> Path:
    """The folder of the shipped webhook connectors (`hubspot.yaml`, `segment.yaml`)."""
    return _shipped("connectors")


def default_definitions() -> Path:
    return definitions_dir() / "lead-stages.yaml"


@cache
def local_root() -> Path:
    """The checkout when running from one (it has pyproject.toml), else the working directory."""
    return _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
