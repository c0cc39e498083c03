"""Posting signed Align callbacks to the app, as the integration service would.

:func:`post_callback` signs an event with one of the app's ``CALLBACK_SECRETS`` and posts it
to the ``callbacks`` endpoint through Django's test client, without a running sandbox:

    response = post_callback(client, "case.status_changed",
                             {"caseId": "42", "status": "shipped", "changedAt": "…"})
    assert response.status_code == 200

:func:`signed_headers` and :func:`post_signed` are the two halves, for tests that need to
tamper with the body or the headers in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.test import Client
from django.urls import reverse

from align_integration.conf import get_setting

from .sandbox.signing import signature_headers, signed_event


def signed_headers(
    body: str | bytes,
    secret: str,
    *,
    webhook_id: str | None = None,
    when: datetime | float | None = None,
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for ``body``."""
    return signature_headers(body, secret, webhook_id, when)


def post_signed(client: Client, url: str, body: str | bytes, headers: Mapping[str, str]) -> Any:
    """POST ``body`` as JSON with ``headers`` (e.g. from :func:`signed_headers`)."""
    extra = {f"HTTP_{key.upper().replace('-', '_')}": value for key, value in headers.items()}
    raw = body.encode() if isinstance(body, str) else body
    return client.generic("POST", url, raw, content_type="application/json", **extra)  # type: ignore[arg-type]


def callback_secret() -> str:
    """The secret the app verifies callbacks with first (``CALLBACK_SECRETS``)."""
    secrets = get_setting("CALLBACK_SECRETS")
    found = [secrets] if isinstance(secrets, str) else list(secrets or [])
    if not found:
        raise ValueError("ALIGN_INTEGRATION['CALLBACK_SECRETS'] is empty: pass secret=")
    return str(found[0])


def post_callback(
    client: Client,
    event_type: str,
    data: dict[str, Any],
    *,
    secret: str | None = None,
    webhook_id: str | None = None,
    timestamp: datetime | float | None = None,
    url: str | None = None,
) -> Any:
    """Sign ``{"type", "timestamp", "data"}`` and post it to the app's callbacks endpoint;
    returns the test client's response. A redelivery passes the same ``webhook_id``."""
    body, headers = signed_event(
        event_type, data, secret or callback_secret(), webhook_id, timestamp
    )
    del headers["Content-Type"]  # post_signed sends it
    return post_signed(client, url or reverse("align_integration:callbacks"), body, headers)
