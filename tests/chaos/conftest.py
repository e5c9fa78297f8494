"""The suite's claim recorder, and its summary: one line per fault, then the totals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.chaos.audit import SUMMARIES, claims_recorded
from tests.conftest import TEST_ENV, servers


@pytest.fixture(scope="module")
def recorder() -> Iterator[sa.Engine]:
    """An engine on the test database, whose step claims are recorded (tests/chaos/audit.py).
    Module-scoped: the recorder's table and trigger are gone before other folders' tests run
    (the migrations-match-the-models check would see them)."""
    servers()  # the session's servers, started on first need; they set DATABASE_URL
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
