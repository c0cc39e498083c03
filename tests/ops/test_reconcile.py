"""``align_reconcile`` against the sandbox: each kind of drift the sandbox is told to make is
found, ``--fix`` adopts only the unambiguous ids and never writes to Align, the report
neutralises formulas, and the exit code says whether drift remains."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from align_integration.models import AlignCase, AlignOrder, CaseEvent
from align_integration.workflows.reconcile.drift import (
    AT_ALIGN_ONLY,
    CONFLICT,
    HERE_ONLY,
    compare,
)
from tests.ops.conftest import read_report

pytestmark = pytest.mark.django_db

#: Calls that change something at Align; reconcile must never make one.
WRITES = ("create_patient", "create_order", "upload_assets", "clincheck_accept", "clincheck_revise")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("align_reconcile", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def writes(sandbox: Any) -> dict[str, int]:
    return {call: sandbox.count(call) for call in WRITES}


def ids(case: Any) -> tuple[str, str]:
    state = AlignCase.objects.get(case=case)
    return state.patient_id, state.order_id


def by_case(report: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["case_id"]: row for row in report}


@pytest.fixture
def drifted(sent_case: Any, make_case: Any, align_sandbox: Any) -> dict[str, Any]:
    """One case of each kind of drift, made through the sandbox's control methods."""
    box = align_sandbox
    cases: dict[str, Any] = {"in_step": sent_case(screenshot=False)}

    # Align made a patient and its order for a case the app never sent (one candidate each).
    unknown = make_case()
    AlignCase.objects.for_case(unknown)
    patient = box.seed_patient(str(unknown.pk))
    box.seed_order(str(unknown.pk), patient_id=patient)
    cases["unknown_here"] = unknown

    # Two patients at Align for a case the app holds none for: ambiguous.
    ambiguous = make_case()
    AlignCase.objects.for_case(ambiguous)
    box.seed_patient(str(ambiguous.pk))
    box.seed_patient(str(ambiguous.pk))
    cases["two_candidates"] = ambiguous

    # Sent, then deleted at Align.
    gone = sent_case(screenshot=False)
    patient_id, order_id = ids(gone)
    box.delete_order(order_id)
    box.delete_patient(patient_id)
    cases["not_at_align"] = gone

    # Sent, but the app holds another patient id than Align's only one.
    conflict = sent_case(screenshot=False)
    AlignCase.objects.filter(case=conflict).update(patient_id="P-STALE")
    cases["conflict"] = conflict

    # Sent, and Align holds a second patient for it besides the app's.
    extra = sent_case(screenshot=False)
    box.seed_patient(str(extra.pk))
    cases["extra_at_align"] = extra
    return cases


def ref(case: Any) -> str:
    return str(case.uuid)


def test_finds_each_kind_of_drift_and_writes_nothing(
    drifted: dict[str, Any], align_sandbox: Any, tmp_path: Path
) -> None:
    before_ids = {name: AlignCase.objects.get(case=case).__dict__ for name, case in drifted.items()}
    before_writes = writes(align_sandbox)
    seen = len(align_sandbox.requests)
    report_path = tmp_path / "drift.csv"
    code, out, err = run("--report", str(report_path))
    assert code == 1, out + err
    rows = by_case(read_report(report_path))
    assert len(rows) == len(drifted)
    expected = {
        "in_step": ("in step", ""),
        "unknown_here": ("drift", AT_ALIGN_ONLY),
        "two_candidates": ("drift", AT_ALIGN_ONLY),
        "not_at_align": ("drift", HERE_ONLY),
        "conflict": ("drift", CONFLICT),
        "extra_at_align": ("drift", AT_ALIGN_ONLY),
    }
    for name, (outcome, kind) in expected.items():
        row = rows[ref(drifted[name])]
        assert (row["outcome"], row["drift"]) == (outcome, kind), (name, row)
    assert rows[ref(drifted["two_candidates"])]["patient_at_align"].count("P-") == 2
    assert "drift remains in 5 case(s)" in err
    # Only reads: no write at Align, nothing changed here.
    assert writes(align_sandbox) == before_writes
    asked = [r for r in align_sandbox.requests[seen:] if r.call != "token"]
    assert {r.method for r in asked} == {"GET"}
    assert sorted({r.call for r in asked}) == ["find_orders", "find_patients"]
    for name, case in drifted.items():
        after = AlignCase.objects.get(case=case).__dict__
        assert {k: after[k] for k in ("patient_id", "order_id", "align_case_id")} == {
            k: before_ids[name][k] for k in ("patient_id", "order_id", "align_case_id")
        }
    assert not CaseEvent.objects.filter(action="reconcile").exists()


def test_fix_adopts_only_unambiguous_ids(
    drifted: dict[str, Any], align_sandbox: Any, tmp_path: Path
) -> None:
    box_patients = {p["caseId"]: p["patientId"] for p in align_sandbox.patients}
    box_orders = {o["caseId"]: o["orderId"] for o in align_sandbox.orders}
    before_writes = writes(align_sandbox)
    before = {name: ids(case) for name, case in drifted.items()}

    code, out, err = run("--fix", "--report", str(tmp_path / "fixed.csv"))
    assert code == 1  # the ambiguous and the deleted cases still drift
    rows = by_case(read_report(tmp_path / "fixed.csv"))
    assert writes(align_sandbox) == before_writes

    unknown = drifted["unknown_here"]
    assert ids(unknown) == (box_patients[str(unknown.pk)], box_orders[str(unknown.pk)])
    assert AlignCase.objects.get(case=unknown).align_case_id == str(unknown.pk)
    assert rows[ref(unknown)]["outcome"] == "fixed"
    conflict = drifted["conflict"]
    assert ids(conflict)[0] == box_patients[str(conflict.pk)] != "P-STALE"
    assert rows[ref(conflict)]["outcome"] == "fixed"
    assert "was P-STALE" in rows[ref(conflict)]["fixed"]
    event = CaseEvent.objects.get(case=conflict, action="reconcile")
    assert "P-STALE" in event.message and event.outcome == CaseEvent.SUCCEEDED

    for name in ("two_candidates", "not_at_align", "extra_at_align", "in_step"):
        assert ids(drifted[name]) == before[name], name
        assert not CaseEvent.objects.filter(case=drifted[name], action="reconcile").exists()
    assert rows[ref(drifted["two_candidates"])]["outcome"] == "drift"

    # Once the unfixable ones are left out, what was fixed is in step: exit 0.
    fixed_refs = [ref(drifted[name]) for name in ("unknown_here", "conflict", "in_step")]
    code, out, err = run(*[arg for r in fixed_refs for arg in ("--case", r)])
    assert code == 0, out + err
    assert "3 in step" in out
    assert writes(align_sandbox) == before_writes


def test_an_order_of_another_patient_is_not_adopted(
    make_case: Any, align_sandbox: Any, tmp_path: Path
) -> None:
    case = make_case()
    box = align_sandbox
    box.seed_patient(str(case.pk), patient_id="P-MINE")
    box.seed_order(str(case.pk), patient_id="P-SOMEONE-ELSE", order_id="O-1")
    code, out, err = run("--case", ref(case), "--fix")
    assert code == 1
    assert ids(case) == ("P-MINE", "")
    assert "belongs to patient P-SOMEONE-ELSE" in out


def test_sales_order_naming_another_patient_is_a_conflict(sent_case: Any) -> None:
    case = sent_case(screenshot=False)
    AlignOrder.objects.create(
        case=case, order_type="primary", sales_order_number="SO-1", patient_id="P-OTHER"
    )
    code, out, _ = run("--case", ref(case))
    assert code == 1 and "sales order names patient P-OTHER" in out


def test_report_neutralises_formulas(make_case: Any, align_sandbox: Any, tmp_path: Path) -> None:
    case = make_case()
    align_sandbox.seed_patient(str(case.pk), patient_id='=HYPERLINK("http://x")')
    path = tmp_path / "report.csv"
    code, _, _ = run("--case", ref(case), "--case", "@SUM(A1)", "--report", str(path))
    assert code == 1
    text = path.read_text(encoding="utf-8-sig")
    rows = read_report(path)
    assert rows[0]["patient_at_align"] == '\'=HYPERLINK("http://x")'
    assert rows[1]["case_id"] == "'@SUM(A1)" and rows[1]["outcome"] == "failed"
    assert "\n=" not in text and ",=" not in text and ",@" not in text


def test_cases_align_cannot_be_asked_about_exit_3(sent_case: Any, align_sandbox: Any) -> None:
    case = sent_case(screenshot=False)
    align_sandbox.inject_fault("find_orders", status=422, times=None)
    code, out, err = run("--case", ref(case))
    assert code == 3, out + err
    assert "Could not ask Align (AlignRequestRejected)" in err


def test_since_keeps_recently_changed_cases(sent_case: Any, align_sandbox: Any) -> None:
    old, new = sent_case(screenshot=False), sent_case(screenshot=False)
    AlignCase.objects.filter(case=old).update(updated_at=timezone.now() - dt.timedelta(days=30))
    asked = align_sandbox.count("find_patients")
    since = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    code, out, err = run("--since", since, "-v", "2")
    assert code == 0, out + err
    assert align_sandbox.count("find_patients") == asked + 1
    assert ref(new) in out and ref(old) not in out
    code, _, err = run("--since", "last tuesday")
    assert code == 2 and "--since" in err


@pytest.mark.django_db(transaction=True)
def test_runs_concurrently_on_the_batch_runner(
    postgres: None, sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case(screenshot=False) for _ in range(6)]
    for case in cases[:3]:
        AlignCase.objects.filter(case=case).update(patient_id="", order_id="")
    code, out, err = run("--fix", "--concurrency", "3")
    assert code == 0, out + err
    assert "3 in step, 3 fixed" in out
    assert all(all(ids(case)) for case in cases)


def test_compare_is_in_step_when_both_sides_agree() -> None:
    found = compare(
        case_id="7",
        patient_here="P-1",
        order_here="O-1",
        sales_order_patient="P-1",
        patients=[{"patientId": "P-1", "caseId": "7"}, {"patientId": "P-9", "caseId": "8"}],
        orders=[
            {"orderId": "O-1", "caseId": "7", "patientId": "P-1", "orderType": "IAS"},
            {"orderId": "O-2", "caseId": "7", "patientId": "P-1", "orderType": "OTHER"},
        ],
        order_type="IAS",
    )
    assert found.in_step and found.kinds == []
