"""The abstract signature test case every signed inbound endpoint's tests inherit.

A subclass says how to post to its endpoint (``url``) and gives a valid payload; these
tests then hold for it: a valid signature is accepted, a wrong secret, a changed byte,
missing headers, stale and future timestamps are refused, a rotated secret is accepted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from align_integration.testing import post_signed
from align_integration.testing import signed_headers as kit_signed_headers

__all__ = ["SignedEndpointCases", "load_fixture", "post_signed", "signed_headers"]

SECRET = "whsec_dGVzdC1zZWNyZXQtb25lLTEyMzQ1Njc4OTA="
OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LXR3by0wOTg3NjU0MzIx"
ROTATED_SECRET = "whsec_cm90YXRlZC1zZWNyZXQtdGhyZWUtMTExMTE="


def signed_headers(
    body: str,
    secret: str = SECRET,
    *,
    webhook_id: str | None = None,
    when: dt.datetime | None = None,
) -> dict[str, str]:
    """The test kit's :func:`~align_integration.testing.signed_headers`, with this suite's
    secret by default."""
    return kit_signed_headers(body, secret, webhook_id=webhook_id, when=when)


class SignedEndpointCases:
    """Inherit, set ``url`` and implement ``valid_body()``; needs the ``db`` fixture."""

    url: str = ""

    def valid_body(self) -> str:
        raise NotImplementedError

    def accepted_status(self) -> int:
        return 200

    def stored_count(self) -> int:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _secrets(self, settings: Any) -> None:
        settings.ALIGN_INTEGRATION = {
            **settings.ALIGN_INTEGRATION,
            "CALLBACK_SECRETS": [SECRET, ROTATED_SECRET],
        }

    def test_valid_signature_is_accepted(self, client: Client) -> None:
        body = self.valid_body()
        response = post_signed(client, self.url, body, signed_headers(body))
        assert response.status_code == self.accepted_status(), response.content
        assert self.stored_count() == 1

    def test_rotated_secret_is_accepted(self, client: Client) -> None:
        body = self.valid_body()
        response = post_signed(client, self.url, body, signed_headers(body, ROTATED_SECRET))
        assert response.status_code == self.accepted_status()

    def test_wrong_secret_is_refused(self, client: Client) -> None:
        body = self.valid_body()
        response = post_signed(client, self.url, body, signed_headers(body, OTHER_SECRET))
        assert response.status_code in (401, 403)
        assert "signature" in response.json()["error"]
        assert self.stored_count() == 0

    def test_body_changed_by_one_byte_is_refused(self, client: Client) -> None:
        body = self.valid_body()
        headers = signed_headers(body)
        tampered = body[:-1] + (" " if body[-1] != " " else "\n")
        response = post_signed(client, self.url, tampered, headers)
        assert response.status_code in (401, 403)
        assert self.stored_count() == 0

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_missing_header_is_refused(self, client: Client, missing: str) -> None:
        body = self.valid_body()
        headers = signed_headers(body)
        del headers[missing]
        response = post_signed(client, self.url, body, headers)
        assert response.status_code == 401
        assert self.stored_count() == 0

    @pytest.mark.parametrize("offset_minutes", [-10, 10])
    def test_stale_and_future_timestamps_are_refused(
        self, client: Client, offset_minutes: int
    ) -> None:
        body = self.valid_body()
        when = dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=offset_minutes)
        response = post_signed(client, self.url, body, signed_headers(body, when=when))
        assert response.status_code in (401, 403)
        assert "timestamp" in response.json()["error"]
        assert self.stored_count() == 0

    def test_garbage_signature_header_is_refused_not_a_500(self, client: Client) -> None:
        body = self.valid_body()
        headers = signed_headers(body)
        headers["webhook-signature"] = "v1,not-base64!!! v2 nonsense"
        response = post_signed(client, self.url, body, headers)
        assert response.status_code in (401, 403)


def load_fixture(name: str, **values: Any) -> str:
    from pathlib import Path

    text = (Path(__file__).parent / "fixtures" / "callbacks" / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    json.loads(text)
    return text.strip()
