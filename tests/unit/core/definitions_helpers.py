"""Builds small definitions files for tests."""

from __future__ import annotations

import textwrap

HEADER = """\
version: 1
effective: 2026-12-01
agreed_by:
  marketing: Head of Marketing
  sales: Head of Sales
"""

DEFAULT_FACTS = """\
facts:
  contacts:
    count: [CONTACTED]
  interest_signals:
    count: [DETAILS_PROVIDED, PRICING_VIEWED, DEMO_REQUESTED, MEETING_HELD]
    within: 90 days
  decision_date:
    latest: DECISION_TIMELINE_PROVIDED.decision_by
"""


def definitions_yaml(stages: list[tuple[str, str]], population: str | None = "contacts >= 1",
                     conditions: dict[str, str] | None = None, facts: str = DEFAULT_FACTS) -> str:
    text = HEADER + facts
    if conditions:
        text += "conditions:\n" + "".join(f"  {k}: {v}\n" for k, v in conditions.items())
    if population:
        text += f"population: {population}\n"
    text += "stages:\n" + "".join(
        f"  - name: {name}\n    meaning: The {name} stage.\n    when: {when}\n"
        for name, when in stages)
    return textwrap.dedent(text)
