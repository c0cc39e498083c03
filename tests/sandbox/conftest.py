"""Fixtures for the sandbox's own tests: a running sandbox, tokens, and a host stand-in.

The sandbox is started once per session and reset before each test. ``receiver`` is the test
kit's :class:`~align_integration.testing.CallbackReceiver`, playing the host's callbacks /
notifications endpoints.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import (
    REDIRECT_URI,
    itero_code,
    itero_exchange,
    order_body,
    patient_body,
)


# The sandbox needs no Django: these no-ops override the repository-wide autouse fixtures
# (which touch Django's caches and settings) so that this folder also runs with -p no:django.
@pytest.fixture(autouse=True)
def _clean_caches() -> None:
    return None


@pytest.fixture(autouse=True)
def _media_root() -> None:
    return None


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox(callback_delay=0.0).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> Iterator[Sandbox]:
    running_sandbox.reset()
    running_sandbox.callback_url = None
    running_sandbox.auto_callbacks = True
    running_sandbox.callback_delay = 0.0
    running_sandbox.plan_viewer_url = None
    running_sandbox.token_ttl = 3600
    running_sandbox.itero.token_ttl = 3600
    yield running_sandbox
    running_sandbox.wait_idle(2)
    running_sandbox.reset()


@pytest.fixture
def align_token(sandbox: Sandbox) -> str:
    answer = requests.post(
        f"{sandbox.url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
def auth(align_token: str) -> Callable[..., dict[str, str]]:
    """Headers for an Align call: the bearer token and a fresh (or given) Idempotency-Key."""

    def headers(key: str | None = None, *, idempotent: bool = True) -> dict[str, str]:
        result = {"Authorization": f"Bearer {align_token}"}
        if idempotent:
            result["Idempotency-Key"] = key or str(uuid.uuid4())
        return result

    return headers


@pytest.fixture
def make_patient(sandbox: Sandbox, auth: Callable[..., dict[str, str]]) -> Callable[..., str]:
    def create(case_id: str = "CASE-1") -> str:
        answer = requests.post(
            f"{sandbox.url}/patients", json=patient_body(case_id), headers=auth(), timeout=5
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["patientId"])

    return create


@pytest.fixture
def make_order(
    sandbox: Sandbox, auth: Callable[..., dict[str, str]], make_patient: Callable[..., str]
) -> Callable[..., str]:
    def create(case_id: str = "CASE-1") -> str:
        patient_id = make_patient(case_id)
        answer = requests.post(
            f"{sandbox.url}/orders", json=order_body(patient_id, case_id), headers=auth(), timeout=5
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["orderId"])

    return create


@pytest.fixture
def itero_tokens(sandbox: Sandbox) -> dict[str, Any]:
    answer = itero_exchange(
        sandbox,
        grant_type="authorization_code",
        code=itero_code(sandbox),
        redirect_uri=REDIRECT_URI,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def itero_auth(itero_tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {itero_tokens['access_token']}"}


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as state:
        yield state
