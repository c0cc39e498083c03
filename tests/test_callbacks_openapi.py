"""The callbacks endpoint against its OpenAPI document (docs/openapi/callbacks.yaml).

Schemathesis generates bodies from the document; each is signed with a configured secret
(so the checks reach past the signature) and sent to the live server; every answer must be
documented, match its schema, and never be a 500.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.webhook_cases import SECRET, signed_headers

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "openapi" / "callbacks.yaml"
schema = schemathesis.openapi.from_path(SCHEMA_PATH)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def serialized(body: Any) -> bytes:
    """The bytes schemathesis meant to send, whatever form the generated body took."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


@pytest.fixture
def known_case(make_case: Any, settings: Any) -> Any:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "CALLBACK_SECRETS": [SECRET]}
    return make_case()


@pytest.mark.django_db(transaction=True)
def test_callbacks_conform_to_the_openapi_document(live_server: Any, known_case: Any) -> None:
    """Every generated example gets a documented answer, never a 500, and the examples
    reach the success path too (not only 4xx)."""
    statuses: list[int] = []

    @given(case=schema["/align/callbacks/"]["POST"].as_strategy())
    @settings(
        max_examples=int(os.environ.get("ALIGN_SCHEMATHESIS_EXAMPLES", "100")),
        derandomize=os.environ.get("ALIGN_SCHEMATHESIS_RANDOM") != "1",
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def check(case: Any) -> None:
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            # Half of the examples name a case the host knows, so success paths are reached.
            if len(json.dumps(body)) % 2 == 0:
                body["data"]["caseId"] = str(known_case.pk)
        raw = serialized(body)
        headers = {
            "Content-Type": "application/json",
            **signed_headers(raw.decode("utf-8", "replace")),
        }
        response = requests.post(
            f"{live_server.url}/align/callbacks/", data=raw, headers=headers, timeout=10
        )
        case.validate_response(response, checks=CHECKS)
        statuses.append(response.status_code)

    check()
    assert 200 in statuses, sorted(set(statuses))
