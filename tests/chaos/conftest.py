"""The suite's claim recorder, and its summary: one line per fault, then the totals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.chaos.audit import SUMMARIES, claims_recorded
from tests.conftest import TEST_ENV


@pytest.fixture(scope="session")
def recorder() -> Iterator[sa.Engine]:
    """An engine on the test database, whose step claims are recorded (tests/chaos/audit.py)."""
    with claims_recorded(TEST_ENV["DATABASE_URL"]) as engine:
        yield engine


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SUMMARIES:
        return
    terminalreporter.section("chaos")
    for summary in SUMMARIES:
        terminalreporter.write_line(summary.line())
    total = sum(s.jobs for s in SUMMARIES)
    terminalreporter.write_line(
        f"chaos: {total} jobs, lost {sum(s.lost for s in SUMMARIES)}, duplicated "
        f"{sum(s.duplicated for s in SUMMARIES)}, stuck {sum(s.stuck for s in SUMMARIES)}, "
        f"longest recovery {max(s.recovery_s for s in SUMMARIES):.1f} s"
    )
