"""A case Align holds already is never created twice: the first create-patient and
create-order ask the find calls first and adopt what Align holds; two candidates are a
conflict (nothing created, staff told); sales orders name the ids without asking."""

from __future__ import annotations

from typing import Any

import pytest

from align_integration import Align
from align_integration.models import AlignCase, AlignOrder, CaseEvent, RemoteOperation
from tests.cutover_kit import align_holds, held_at_align

pytestmark = pytest.mark.django_db


def messages(case: Any) -> list[str]:
    events = CaseEvent.objects.filter(case=case).order_by("pk")
    return list(events.values_list("message", flat=True))


def test_first_send_adopts_the_patient_and_order_align_holds(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case()
    [patient_id] = align_holds(align_sandbox, str(case.pk))

    assert Align().initiate_align_order(None, case).ok

    assert align_sandbox.count("create_patient") == align_sandbox.count("create_order") == 0
    assert align_sandbox.count("find_patients") == align_sandbox.count("find_orders") == 1
    assert held_at_align(align_sandbox, str(case.pk)) == (1, 1)
    state = AlignCase.objects.get(case=case)
    assert (state.patient_id, state.order_id) == (patient_id, f"O-OLD-{case.pk}-1")
    assert state.order_sent
    assert align_sandbox.calls("upload_assets")[0].form["pId"] == patient_id
    assert any("Align holds it already (found by caseId)" in m for m in messages(case))


def test_first_send_adopts_a_patient_and_creates_only_the_missing_order(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case()
    [patient_id] = align_holds(align_sandbox, str(case.pk), orders=0)
    assert Align().initiate_align_order(None, case).ok
    assert align_sandbox.count("create_patient") == 0
    [order] = align_sandbox.calls("create_order")
    assert order.json["patientId"] == patient_id
    assert held_at_align(align_sandbox, str(case.pk)) == (1, 1)


def test_two_patients_at_align_are_a_conflict_and_nothing_is_created(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case()
    align_holds(align_sandbox, str(case.pk), patients=2, orders=0)

    status_code, errors = Align().initiate_align_order(None, case)

    assert status_code == 409
    assert "Align already holds 2 patients for this case" in errors[0]
    assert f"P-OLD-{case.pk}-1, P-OLD-{case.pk}-2" in errors[0]
    assert align_sandbox.count("create_patient") == 0
    operation = RemoteOperation.objects.get(case=case, kind="create_patient")
    assert (
        operation.state,
        operation.attempts,
        operation.last_status_code,
        operation.last_error_code,
    ) == (RemoteOperation.FAILED, 0, 409, "conflict")
    assert operation.next_attempt_at is None  # not retried in the background
    state = AlignCase.objects.get(case=case)
    assert not state.patient_id
    # Sending again asks again: still a conflict, still nothing created.
    assert Align().initiate_align_order(None, case).status_code == 409
    assert align_sandbox.count("create_patient") == 0


def test_two_orders_at_align_are_a_conflict(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    align_holds(align_sandbox, str(case.pk), orders=2)
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 409
    assert "Align already holds 2 IAS orders for this case" in errors[0]
    assert align_sandbox.count("create_order") == 0
    assert held_at_align(align_sandbox, str(case.pk)) == (1, 2)


def test_an_order_under_another_patient_is_a_conflict(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    align_holds(align_sandbox, str(case.pk), order_patient="P-SOMEONE-ELSE")
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 409
    assert "under patient P-SOMEONE-ELSE" in errors[0]
    assert align_sandbox.count("create_order") == 0


def test_sales_orders_name_the_patient_and_order_without_asking(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case()
    align_holds(align_sandbox, str(case.pk), patient_ids=["P-7"])
    AlignOrder.objects.create(
        case=case, order_type="primary", sales_order_number="SO-7", patient_id="P-7"
    )
    assert Align().initiate_align_order(None, case).ok
    calls = {r.call for r in align_sandbox.requests}
    assert not calls & {"create_patient", "create_order", "find_patients", "find_orders"}
    state = AlignCase.objects.get(case=case)
    assert (state.patient_id, state.order_id) == ("P-7", "SO-7")
    assert align_sandbox.calls("upload_assets")[0].form["pId"] == "P-7"
    assert any("Already at Align: Align patient P-7" in m for m in messages(case))


def test_a_case_at_align_is_not_sent_even_when_no_longer_eligible(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case(stl_files=0)
    AlignCase.objects.create(
        case=case, patient_id="P-1", order_id="SO-1", assets_uploaded_at="2021-01-01T00:00Z"
    )
    assert Align().initiate_align_order(None, case) == (200, [])
    assert not align_sandbox.requests
    assert messages(case) == ["Already at Align; nothing sent."]
