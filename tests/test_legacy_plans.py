"""``align_import_legacy`` at cutover: cases whose sales orders are imported are marked as
sent (never sent again), and ``--plans-csv`` / ``--plans-table`` bring over the treatment
plans and statuses of cases in flight, so that a case waiting for review can be reviewed on
day one."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.models import AlignCase, CaseAsset, CaseEvent
from tests.cutover_kit import create_legacy_tables, insert_rows, patient_values
from tests.images import jpeg_data_url

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T1 = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
T2 = dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("align_import_legacy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_importing_sales_orders_marks_the_case_as_sent(
    make_case: Any, staff_user: Any, align_sandbox: Any
) -> None:
    case, other = make_case(), make_case()
    create_legacy_tables()
    insert_rows(
        "cases_align_orders",
        [
            (1, case.pk, "primary", "SO-1", "PID-1", T1),
            (2, case.pk, "primary", "SO-2", "PID-2", T2),  # the newest primary counts
            (3, case.pk, "secondary", "SO-3", "PID-2", T2),
        ],
    )
    out, err = run("--only", "orders")
    assert "cases marked as sent (never sent again): 1" in out, out + err

    state = AlignCase.objects.get(case=case)
    assert (state.patient_id, state.order_id, state.align_case_id) == (
        "PID-2",
        "SO-2",
        str(case.pk),
    )
    assert state.assets_uploaded_at == T2 and state.order_sent  # the sales order's date
    assert not AlignCase.objects.filter(case=other).exists()
    [event] = CaseEvent.objects.filter(case=case, action="legacy_marked_sent")
    assert "Already at Align: sent by the old tool (Align patient PID-2" in event.message

    staff = Client()
    staff.force_login(staff_user)
    panel = staff.get(
        reverse("align_integration:staff-align-panel", kwargs={"case_ref": case.uuid})
    ).content.decode()
    assert "Already at Align" in panel and "(sent by the old tool, imported)" in panel
    assert "SO-2" in panel and 'id="align-send"' not in panel

    assert Align().initiate_align_order(None, case) == (200, [])
    assert not align_sandbox.requests  # nothing sent: not even a find call

    events = CaseEvent.objects.count()
    out, _ = run("--only", "orders")
    assert "cases marked as sent (never sent again): 0" in out
    assert CaseEvent.objects.count() == events


def test_a_case_this_app_holds_under_another_patient_is_not_marked(make_case: Any) -> None:
    case = make_case()
    AlignCase.objects.create(case=case, patient_id="P-NEW")
    create_legacy_tables()
    insert_rows("cases_align_orders", [(1, case.pk, "primary", "SO-1", "PID-1", T1)])
    out, err = run("--only", "orders")
    assert "cases marked as sent (never sent again): 0" in out
    assert f"Check case {case.pk}: this app holds Align patient P-NEW" in err
    assert not AlignCase.objects.get(case=case).order_sent


def test_plans_make_the_cases_in_flight_reviewable(
    make_case: Any, provider: Any, tmp_path: Path
) -> None:
    review = make_case(provider=provider, last_name="Reviewson")
    approved = make_case(provider=provider)
    revising = make_case(provider=provider)
    CaseAsset.objects.create(  # the provider approved after the plan arrived
        case=approved,
        kind=CaseAsset.CCACCEPTSCREEN,
        vault_id="V-1",
        external_key="K-1",
        source="legacy",
        source_ref="legacy:1",
    )
    CaseAsset.objects.filter(source_ref="legacy:1").update(date_created=T2)
    plans = write(
        tmp_path / "plans.csv",
        [
            "case_id,plan_id,version,status,received_at,patient_name",
            f"{review.pk},PL-1,1,treatment_plan_ready,2021-03-04 05:06,Reviewson",
            f"{review.pk},PL-2,2.0,treatment_plan_ready,2021-05-06 07:08,Reviewson",
            f"{review.pk},PL-1,1,treatment_plan_ready,2021-03-04 05:06,Reviewson",  # older
            f"{approved.pk},PL-3,1,TREATMENT_PLAN_READY,2021-03-04,x",
            f"{revising.pk},PL-4,1,revision_requested,2021-03-04,x",
            f"{review.pk},PL-5,two,treatment_plan_ready,2021-03-04,x",
            f"{review.pk},PL-6,1,treatment_plan_ready,,x",
            "987654,PL-7,1,treatment_plan_ready,2021-03-04,x",
        ],
    )
    out, err = run("--plans-csv", plans)

    assert "Treatment plans from CSV plans.csv: 8 row(s); 4 imported, 1 skipped, 3 invalid." in out
    assert "plans awaiting the provider's review: 2" in out  # PL-1 then PL-2 of one case
    assert "skipped 1: a newer plan and status are on file" in out
    assert "version is not a whole number" in err and "missing received date" in err
    assert "unknown case" in err
    for value in patient_values(review):
        assert value not in out + err

    state = AlignCase.objects.get(case=review)
    assert (state.treatment_plan_id, state.treatment_plan_version) == ("PL-2", 2)
    assert state.treatment_plan_at == T2.replace(second=0)
    assert (state.status, state.awaiting_provider_review) == ("treatment_plan_ready", True)
    assert not AlignCase.objects.get(case=approved).awaiting_provider_review
    revising_state = AlignCase.objects.get(case=revising)
    assert (revising_state.status, revising_state.awaiting_provider_review) == (
        "revision_requested",
        False,
    )
    assert (
        "1 treatment plan(s)"
        in CaseEvent.objects.get(case=approved, action="legacy_import").message
    )

    # Day one: the provider approves the imported plan on the app's page.
    doctor = Client()
    doctor.force_login(provider.user)
    page = doctor.get(
        reverse("align_integration:provider-case-review", kwargs={"case_ref": review.uuid})
    ).content.decode()
    assert "PL-2" in page and 'id="align-approve"' in page
    answer = doctor.post(
        reverse("align_integration:provider-case-action", kwargs={"case_ref": review.uuid}),
        {"action": "approve", "acceptance_screenshot": jpeg_data_url()},
    )
    assert answer.status_code == 200

    again, _ = run("--plans-csv", plans)
    assert "8 row(s); 0 imported, 5 skipped, 3 invalid." in again
    assert not AlignCase.objects.get(case=review).awaiting_provider_review  # not reset


def test_a_newer_plan_from_align_is_kept(make_case: Any, tmp_path: Path) -> None:
    case = make_case()
    AlignCase.objects.create(
        case=case,
        treatment_plan_id="PL-9",
        treatment_plan_version=3,
        treatment_plan_at=T2,
        status="accepted",
        status_changed_at=T2,
    )
    plans = write(
        tmp_path / "plans.csv",
        ["case_id,plan_id,version,status,received_at", f"{case.pk},PL-1,2,x,2021-03-04"],
    )
    out, _ = run("--plans-csv", plans, "--dry-run")
    assert "0 to import, 1 skipped" in out
    out, _ = run("--plans-csv", plans)
    state = AlignCase.objects.get(case=case)
    assert (state.treatment_plan_id, state.status) == ("PL-9", "accepted")


def test_plans_from_a_table_and_no_plans_without_a_source(make_case: Any) -> None:
    case = make_case()
    create_legacy_tables(
        service_plans="CREATE TABLE service_plans (case_ref integer, plan varchar(64), "
        "version integer, status varchar(64), received timestamp with time zone)"
    )
    insert_rows("service_plans", [(case.pk, "PL-1", 1, "treatment_plan_ready", T1)])
    with pytest.raises(CommandError, match="give --plans-csv or --plans-table"):
        run("--only", "plans")
    out, err = run(
        "--only=plans",
        "--plans-table=service_plans",
        "--plans-column=case_id=case_ref",
        "--plans-column=plan_id=plan",
        "--plans-column=received_at=received",
        "--dry-run",
    )
    assert "1 to import" in out and not AlignCase.objects.filter(case=case).exists()
    run(
        "--only=plans",
        "--plans-table=service_plans",
        "--plans-column=case_id=case_ref",
        "--plans-column=plan_id=plan",
        "--plans-column=received_at=received",
    )
    state = AlignCase.objects.get(case=case)
    assert (state.treatment_plan_id, state.awaiting_provider_review) == ("PL-1", True)
    # Without a plans source, a run of the tables reads orders and assets only.
    out, _ = run()
    assert "Treatment plans" not in out
