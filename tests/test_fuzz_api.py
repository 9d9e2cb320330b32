"""Schemathesis against the live OpenAPI schema: no 5xx, every response as documented.

The operations are read from `/api/schema/` at run time, so every endpoint a later change
adds is fuzzed without touching this file. PALIER_FUZZ_EXAMPLES raises the effort locally.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.config.wsgi import application
from tests.conftest import client_for
from tests.fuzz_data import seed_fuzz_world

EXAMPLES = int(os.environ.get("PALIER_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_schema(db):
    # Requests go straight to the WSGI app, inside the test's transaction: like Django's test
    # client, keep the request signals from closing that connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_headers(db):
    world = seed_fuzz_world()
    token = client_for(world["manager"])._credentials["HTTP_AUTHORIZATION"]
    return {"Authorization": token}


schema = schemathesis.pytest.from_fixture("fuzz_schema")
# The operations in a few parts by path, so that parallel test workers share the work; the
# last part takes every path the others do not name.
PARTS = {
    "estate": "residences buildings entrances dwellings common-areas equipment leases people "
    "delegations agencies me",
    "tickets": "tickets incidents categories appointments",
    "notifications": "notification notifications push-devices broadcasts news rent-receipts "
    "balance on-call-shifts door-knocking alerts",
    "telemetry": "devices quarantine faults fault-rules fault-calendar device-board",
    "audits": "audit-templates audit-rounds audits audit-scores audit-reports cleanliness-surveys "
    "audit-scoring-policy",
}
PATH_REGEX = {part: "^/api/v1/(" + "|".join(words.split()) + ")/" for part, words in PARTS.items()}
OTHERS = "^(?!" + "|".join(f"(?:{regex})" for regex in PATH_REGEX.values()) + ")"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _call_and_validate(case, headers) -> None:
    # Each call in its own savepoint: a database error in one operation is reported there and
    # does not poison the shared test transaction for every operation fuzzed after it.
    with transaction.atomic():
        case.call_and_validate(headers=headers, checks=CHECKS)


@schema.include(path_regex=PATH_REGEX["estate"]).parametrize()
@FUZZ_SETTINGS
def test_estate_endpoints_never_fail_or_break_their_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)


@schema.include(path_regex=PATH_REGEX["tickets"]).parametrize()
@FUZZ_SETTINGS
def test_ticket_endpoints_never_fail_or_break_their_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)


@schema.include(path_regex=PATH_REGEX["notifications"]).parametrize()
@FUZZ_SETTINGS
def test_notification_endpoints_never_fail_or_break_their_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)


@schema.include(path_regex=PATH_REGEX["telemetry"]).parametrize()
@FUZZ_SETTINGS
def test_device_and_fault_endpoints_never_fail_or_break_their_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)


@schema.include(path_regex=PATH_REGEX["audits"]).parametrize()
@FUZZ_SETTINGS
def test_audit_endpoints_never_fail_or_break_their_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)


@schema.include(path_regex=OTHERS).parametrize()
@FUZZ_SETTINGS
def test_every_other_endpoint_never_fails_or_breaks_its_schema(case, fuzz_headers):
    _call_and_validate(case, fuzz_headers)
