"""No admin page of the app answers 500, whatever the query string (issue 13, finding 8).

Walks every changelist the app registers, with garbage for every filter parameter the page
itself declares (its list filters' expected parameters, the date hierarchy) and for the
generic ones (search, ordering, page, popup…), then every change and history page with
garbage object ids.  A bad ``?case=`` is refused with 400 and its reason; other lookups that
cannot apply fall back to the unfiltered list, as Django does for its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse

from align_integration.models import CaseEvent
from align_integration.workflows.timeline import record

pytestmark = pytest.mark.django_db

#: Each breaks a different assumption: a number, a date, a length, what the database takes.
GARBAGE = ["abc", "-1", "9999", "1e999", "2020-13-45", "a\x00b", "💥" * 200]
GENERIC = ["q", "o", "p", "case", "_to_field"]


def app_admins() -> list[tuple[Any, Any]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "align_integration"
    ]


def declared_parameters(model_admin: Any, url: str, user: Any) -> set[str]:
    request = RequestFactory().get(url)
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    parameters: set[str] = set()
    for spec in changelist.filter_specs:
        parameters.update(spec.expected_parameters())
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        parameters.update(f"{field}__{part}" for part in ("year", "month", "day", "gte", "lt"))
    return parameters


@pytest.fixture
def admin_browser(admin_user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


def test_every_changelist_survives_garbage_in_every_parameter(
    admin_browser: Client, admin_user: Any, make_case: Any
) -> None:
    case = make_case()
    record(case, "initiate_order", CaseEvent.INFO, "An entry.")
    failures: list[tuple[str, str, str, int]] = []
    walked = 0
    for model, model_admin in app_admins():
        url = reverse(f"admin:align_integration_{model._meta.model_name}_changelist")
        assert admin_browser.get(url).status_code == 200, url
        parameters = declared_parameters(model_admin, url, admin_user) | set(GENERIC)
        for parameter in sorted(parameters):
            for value in GARBAGE:
                walked += 1
                status = admin_browser.get(url, {parameter: value}).status_code
                if status >= 500:
                    failures.append((model._meta.model_name, parameter, repr(value[:12]), status))
        # Several bad parameters at once, and a bad one next to a good one.
        combined = {parameter: "abc" for parameter in parameters}
        assert admin_browser.get(url, combined).status_code < 500
    assert walked > 200
    assert not failures, failures


@pytest.mark.parametrize("object_id", ["abc", "0", "-1", "%00", "1e999", "99999999999999999999"])
def test_change_and_history_pages_survive_garbage_ids(
    admin_browser: Client, object_id: str
) -> None:
    for model, _ in app_admins():
        name = model._meta.model_name
        for view in ("change", "history"):
            url = reverse(f"admin:align_integration_{name}_{view}", args=[object_id])
            assert admin_browser.get(url).status_code < 500, url
            assert admin_browser.get(url + "?_changelist_filters=%00").status_code < 500, url


def test_a_bad_case_filter_is_400_with_its_reason(admin_browser: Client, make_case: Any) -> None:
    url = reverse("admin:align_integration_caseevent_changelist")
    for value in ("abc", "1e999", "' OR 1=1 --"):
        response = admin_browser.get(url, {"case": value})
        assert response.status_code == 400
        assert response.content.decode() == "case: not a valid case id."
    response = admin_browser.get(url, {"action": "\x00"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    case = make_case()
    page = admin_browser.get(url, {"case": str(case.pk)})
    assert page.status_code == 200
    assert f"Align timeline of case {case.pk}" in page.content.decode()


def test_an_impossible_date_falls_back_to_the_whole_list(admin_browser: Client) -> None:
    url = reverse("admin:align_integration_caseevent_changelist")
    response = admin_browser.get(url, {"created_at__year": "9999"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
