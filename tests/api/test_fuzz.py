"""The API under schemathesis: examples generated from /api/v1/openapi.json, sent with a token
and with none. No answer may be a 5xx, and every answer must match the contract (status, content
type, body schema). Bounded so it fits the suite; `FUZZ_EXAMPLES=200 make test` digs deeper."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import new_entity_id
from tests.support.queues import RecordingQueue

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(settings, tmp_path_factory):
    from api.app import create_app

    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path_factory.mktemp("fuzz"))
    return create_app(local, queue=RecordingQueue())


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def fuzz_token(make_token):
    # A writer of one fresh listing only: generated ids never reach another test's images.
    return make_token(77, entities=(f"properties:{new_entity_id()}",))


def test_no_server_error_and_every_answer_matches_the_contract(api_schema, fuzz_token):
    """Each operation in turn (schemathesis' own pytest plugin does not run on pytest 9 yet)."""
    failures, tried = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case):
            for headers in ({"Authorization": f"Bearer {fuzz_token}"}, {}):
                case.call_and_validate(checks=CHECKS, headers=headers)

        try:
            run()
            tried += 1
        except Exception as exc:  # the failure, with the case that makes it, per operation
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert failures == []
    assert tried >= 14
