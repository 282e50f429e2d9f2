"""The dashboards committed are the ones the code generates, with their fixed uids."""

from __future__ import annotations

import importlib.util
import json

from tests.paths import REPO_ROOT

GRAFANA = REPO_ROOT / "deploy" / "grafana"


def test_committed_dashboards_are_generated_from_code():
    spec = importlib.util.spec_from_file_location("generate_dashboards",
                                                  GRAFANA / "generate_dashboards.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    uids = set()
    for name, build in generator.DASHBOARDS.items():
        text = generator.render(build())
        assert (GRAFANA / "dashboards" / name).read_text() == text, \
            f"{name} is stale: run .venv/bin/python deploy/grafana/generate_dashboards.py"
        uids.add(json.loads(text)["uid"])
    assert uids == {"leadstage-alignment", "leadstage-operations"}
