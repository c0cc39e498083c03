"""Request bodies and small helpers shared by the sandbox tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from align_integration.testing.sandbox import Sandbox

REDIRECT_URI = "https://host.example/align/itero/callback"


def patient_body(case_id: str = "CASE-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "caseId": case_id,
        "mrn": "MRN-1",
        "firstName": "Pat",
        "lastName": "Example",
        "dateOfBirth": "1990-04-01",
        "gender": "F",
        "email": "pat@example.com",
        "phone": "",
    }
    body.update(overrides)
    return body


def order_body(patient_id: str, case_id: str = "CASE-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "caseId": case_id,
        "patientId": patient_id,
        "mrn": "MRN-1",
        "orderType": "IAS",
        "treatmentOption": "comprehensive",
        "chiefConcern": "crowding",
    }
    body.update(overrides)
    return body


def itero_code(sandbox: Sandbox, state: str = "st-1", redirect_uri: str = REDIRECT_URI) -> str:
    answer = requests.get(
        f"{sandbox.url}/itero/login",
        params={
            "client_id": sandbox.itero.auth.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def itero_exchange(sandbox: Sandbox, **form: str) -> requests.Response:
    data = {
        "client_id": sandbox.itero.auth.client_id,
        "client_secret": sandbox.itero.auth.client_secret,
    }
    data.update(form)
    return requests.post(f"{sandbox.url}/oauth/token", data=data, timeout=5)
