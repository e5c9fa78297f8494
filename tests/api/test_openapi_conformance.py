"""Schemathesis against the app's own OpenAPI document: no 5xx, and every answer as documented.

In-process (ASGI), on the test database and queue; the generated uploads are random bytes, so
none of them becomes a job.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app

pytestmark = pytest.mark.system  # the app in-process, on the test database

# Archiving a pipeline or giving it a new version would change the shared test pipeline (id 1)
# under every other test: those two operations are covered by tests of their own instead.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app()).exclude(
    method=["PUT", "DELETE"], path="/pipelines/{pipeline_id}"
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_its_schema_says(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
