"""Configuration errors: a missing setting is Django's ``ImproperlyConfigured`` (not an
``AlignError``), sends nothing, and leaves the remote operation as it was."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.core.exceptions import ImproperlyConfigured

from align_integration import Align
from align_integration.client import AlignConfigurationError, AlignError, AlignServiceClient
from align_integration.client.itero import IteroClient, IteroUnsafeURL
from align_integration.models import CaseEvent, RemoteOperation


@pytest.mark.parametrize("missing", ["BASE_URL", "CLIENT_ID", "CLIENT_SECRET"])
@responses.activate
def test_a_missing_service_setting_is_improperly_configured_and_sends_nothing(
    settings: Any, missing: str
) -> None:
    service = {**settings.ALIGN_INTEGRATION["SERVICE"], missing: ""}
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "SERVICE": service}
    with pytest.raises(AlignConfigurationError, match=missing) as caught:
        AlignServiceClient().token  # noqa: B018 - fetches the token
    assert isinstance(caught.value, ImproperlyConfigured)
    assert not isinstance(caught.value, AlignError)
    assert len(responses.calls) == 0


def test_a_missing_itero_setting_is_improperly_configured(settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {"ALLOWED_HOSTS": [".itero.test"]},
    }
    with pytest.raises(ImproperlyConfigured, match="OAUTH_BASE_URL"):
        IteroClient().refresh("r")


def test_an_unsafe_itero_url_is_both_a_configuration_and_a_client_error() -> None:
    with pytest.raises(IteroUnsafeURL) as caught:
        IteroClient(endpoints={"orders": "https://evil.example.net/o"}).endpoint("orders")
    assert isinstance(caught.value, ImproperlyConfigured)
    assert isinstance(caught.value, AlignError)
    assert not caught.value.retryable


@pytest.mark.django_db
def test_a_configuration_error_leaves_the_operation_untouched(
    settings: Any, make_case: Any
) -> None:
    """Nothing was sent: no failed event, no attempt spent, no claim left behind."""
    service = {**settings.ALIGN_INTEGRATION["SERVICE"], "CLIENT_SECRET": ""}
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "SERVICE": service}
    case = make_case()
    with pytest.raises(ImproperlyConfigured):
        Align().initiate_align_order(None, case)
    operation = RemoteOperation.objects.get(case=case)
    assert operation.attempts == 0
    assert operation.claimed_until is None
    assert operation.state == RemoteOperation.PENDING
    assert not CaseEvent.objects.filter(case=case, outcome=CaseEvent.FAILED).exists()
