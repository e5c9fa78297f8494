"""The runner's one table from an exception to what becomes of the step (no servers)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import InterfaceError, OperationalError

from common.pipeline import StepError, TransientStepError
from worker.lease import StepLeasedError
from worker.records import SupersededError
from worker.runner import Outcome, outcome_of


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (SupersededError(), Outcome.SUPERSEDED),
        (StepLeasedError(2, None), Outcome.LEASED),
        (OperationalError("SELECT 1", {}, Exception("gone")), Outcome.OUTAGE),
        (InterfaceError("SELECT 1", {}, Exception("closed")), Outcome.OUTAGE),
        (TransientStepError("the model server answered 503"), Outcome.RETRY),
        (StepError("not an image"), Outcome.FAIL),
        (KeyError("x"), Outcome.CRASH),
    ],
)
def test_each_exception_has_its_outcome(exc: Exception, outcome: Outcome) -> None:
    assert outcome_of(exc) is outcome


def test_a_transient_error_is_retried_though_it_is_a_step_error() -> None:
    # The first matching row wins: a transient error must not fail the job at once.
    assert issubclass(TransientStepError, StepError)
    assert outcome_of(TransientStepError("timeout")) is Outcome.RETRY
