"""``{% load align_integration %}{% align_panel case %}``: the staff panel inside a host's
own case page, as the old tool showed it above the prescription.  It renders the
checklist, the button or the Align state and the newest timeline entries; nothing when the
lab is not Align or the user is not staff; it warns about an unknown gender before sending;
and its send returns to the host's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import get_messages
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from waffle.testutils import override_switch

from align_integration.models import AlignCase, AlignOrder, CaseEvent
from align_integration.outbound import SWITCH

pytestmark = pytest.mark.django_db

HOST_PAGE = Template(
    "{% load align_integration %}<h1>Case {{ case.case_number }}</h1>"
    "{% align_panel case %}<section id='prescription'>Rx</section>"
)


def render(case: Any, user: Any, template: Template = HOST_PAGE, path: str = "/cases/1/") -> str:
    request = RequestFactory().get(path)
    request.user = user
    return template.render(RequestContext(request, {"case": case}))


def test_the_panel_renders_inside_the_host_page_above_the_prescription(
    make_case: Any, staff_user: Any, flags: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    for n in range(8):
        CaseEvent.objects.create(case=case, action=f"step-{n}", outcome="info", message=f"m{n}")
    html = render(case, staff_user)
    assert html.index("align-panel") < html.index("prescription")
    assert "Prescription lab is Align" in html and "At least 2 STL files (2 on file)" in html
    send = reverse("align_integration:staff-align-initiate-order", kwargs={"case_ref": case.uuid})
    assert f'action="{send}"' in html
    assert 'name="next" value="/cases/1/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "m7" in html and "m3" in html and "m2" not in html  # the 5 newest entries
    assert "gender is unknown" not in html


def test_nothing_for_another_lab_or_a_user_who_is_not_staff(
    make_case: Any, staff_user: Any, provider: Any
) -> None:
    other_lab = make_case(lab="OT")
    assert "align-panel" not in render(other_lab, staff_user)
    align_case = make_case()
    assert "align-panel" not in render(align_case, provider.user)
    assert "align-panel" not in render(align_case, AnonymousUser())


def test_the_tag_needs_request_in_the_context(make_case: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="needs 'request'"):
        HOST_PAGE.render(Context({"case": make_case()}))


def test_an_unknown_gender_is_warned_about_with_what_will_be_sent(
    make_case: Any, staff_user: Any, flags: Any, settings: Any
) -> None:
    flags("initiate-align-order")
    case = make_case(gender="U")
    html = render(case, staff_user)
    assert "The patient's gender is unknown" in html
    assert "will be sent as <strong>M</strong>" in html
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "DEFAULT_GENDER": "F"}
    assert "will be sent as <strong>F</strong>" in render(case, staff_user)


def test_a_case_at_align_shows_its_state_and_sales_order_instead_of_the_button(
    make_case: Any, staff_user: Any, flags: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    AlignCase.objects.create(
        case=case, patient_id="PID-1", order_id="SO-1", assets_uploaded_at="2021-01-01T00:00Z"
    )
    AlignOrder.objects.create(
        case=case,
        order_type="primary",
        sales_order_number="SO-1",
        patient_id="PID-1",
        source="legacy",
    )
    html = render(case, staff_user)
    assert "Already at Align" in html and "sent by the old tool, imported" in html
    assert "SO-1" in html and 'id="align-send"' not in html


def test_paused_outbound_traffic_is_shown_and_the_button_disabled(
    make_case: Any, staff_user: Any, flags: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    with override_switch(SWITCH, active=True):
        html = render(case, staff_user)
    assert "Outbound traffic to Align is paused" in html
    assert 'id="align-send" disabled' in html


def test_the_embedded_send_returns_to_the_host_page(
    make_case: Any, staff_user: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    client = Client()
    client.force_login(staff_user)
    url = reverse("align_integration:staff-align-initiate-order", kwargs={"case_ref": case.uuid})
    answer = client.post(url, {"next": "/cases/1/"})
    assert answer.status_code == 303 and answer["Location"] == "/cases/1/"
    assert [str(m) for m in get_messages(answer.wsgi_request)] == ["The case was sent to Align."]
    assert align_sandbox.count("create_patient") == 1
    # Another site's address is not followed: the panel page answers instead.
    answer = client.post(url, {"next": "https://elsewhere.example/"})
    assert answer.status_code == 200 and b"Already at Align" in answer.content


def test_a_host_naming_cases_otherwise_passes_case_ref(
    make_case: Any, staff_user: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.CaseNumberLookupAdapter",
    }
    case = make_case()
    with pytest.raises(ImproperlyConfigured, match="case_ref="):
        render(case, staff_user)
    template = Template(
        "{% load align_integration %}{% align_panel case case_ref=case.case_number entries=1 %}"
    )
    html = render(case, staff_user, template)
    assert f'data-case="{case.case_number}"' in html
