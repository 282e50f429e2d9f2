import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def scale() -> float:
    """1.0 for `make faults`; smaller inside `make test`."""
    return float(os.environ.get("LEADSTAGE_FAULTS_SCALE", "0.2"))
