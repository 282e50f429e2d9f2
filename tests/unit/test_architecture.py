"""What import-linter and mypy cannot say on their own: the pure layers carry no escape hatch."""

from __future__ import annotations

import pytest

from tests.paths import REPO_ROOT


@pytest.mark.parametrize("layer", ["core", "wire"])
def test_the_strictly_typed_layers_have_no_type_ignore(layer):
    found = [f"{path.relative_to(REPO_ROOT)}:{number}"
             for path in sorted((REPO_ROOT / "streams" / layer).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if "type: ignore" in line]
    assert found == []


def test_every_folder_of_streams_is_a_layer_listed_in_the_contract():
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    folders = {f"streams.{p.name}" for p in (REPO_ROOT / "streams").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    loose = [p.name for p in (REPO_ROOT / "streams").glob("*.py") if p.name != "__init__.py"]
    assert folders == set(layers) and loose == []
