"""The cutover, end to end: a practice switches from the in-repo tool mid-week, with cases
in every state, and nothing is sent twice, lost or stuck (docs/migration.md walks through
the same steps).

The old tool's records are CSV exports in tests/fixtures/legacy/ (``{sent.pk}`` and the like
name this test's cases): its sales orders and acceptance screenshots, the treatment plans the
old integration service held, and the export of the revision query.  Five cases:

- ``sent``: sent by the old tool, sales orders back, Align still planning;
- ``review``: a treatment plan waits for the provider's review;
- ``approved``: the provider approved (screenshot in the old vault), aligners not bought yet;
- ``failed``: the provider's revision request failed with a 503 (the old tool's case note);
- ``fresh``: never sent.

Align (the sandbox) holds the four cases the old tool sent.  After the import, every flow
runs against the sandbox, and then again, to show that a repeat does nothing.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from waffle.testutils import override_switch

from align_integration import signals
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.outbound import SWITCH
from tests.cutover_kit import align_holds, held_at_align, patient_values, send_callback
from tests.images import jpeg_data_url
from tests.testapp.models import CaseNote

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "legacy"
PIDS = {
    "sent": "PID-SENT",
    "review": "PID-REVIEW",
    "approved": "PID-APPROVED",
    "failed": "PID-FAILED",
}
PROVIDER_MESSAGE = "Please close the space between 11 and 21 before finishing."
OLD_NOTE = "Bad Align response during Set Case Status. Action: revise. Status code: 503"


def exported(name: str, cases: dict[str, Any], folder: Path) -> str:
    """A fixture export with this test's case ids filled in."""
    path = folder / name
    path.write_text((FIXTURES / name).read_text(encoding="utf-8").format(**cases), "utf-8")
    return str(path)


def command(name: str, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + err.getvalue() + str(error)
    return 0, out.getvalue() + err.getvalue()


@pytest.fixture
def practice(
    settings: Any, align_sandbox: Any, make_case: Any, provider: Any, flags: Any
) -> dict[str, Any]:
    """The host's cases in every state, and Align holding the ones the old tool sent."""
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.NotingAdapter",
    }
    flags("initiate-align-order")
    flags("set-align-order-status")
    names = {
        "sent": ("Sentina", "Orderly"),
        "review": ("Revia", "Waitwell"),
        "approved": ("Approva", "Buyless"),
        "failed": ("Failia", "Fivezero"),
        "fresh": ("Neva", "Sentbefore"),
    }
    cases = {
        key: make_case(first_name=first, last_name=last, provider=provider, gender="U")
        for key, (first, last) in names.items()
    }
    for key, pid in PIDS.items():
        case = cases[key]
        align_holds(
            align_sandbox, str(case.pk), mrn=case.patient.medical_record_number, patient_ids=[pid]
        )
    return cases


def test_a_mid_week_cutover_sends_nothing_twice_and_every_case_moves_on(
    practice: dict[str, Any],
    align_sandbox: Any,
    provider: Any,
    staff_user: Any,
    tmp_path: Path,
    caplog: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = practice
    staff = Client()
    staff.force_login(staff_user)
    doctor = Client()
    doctor.force_login(provider.user)
    accepted: list[Any] = []

    def on_accepted(sender: Any, case: Any, **kwargs: Any) -> None:
        accepted.append(case.pk)

    signals.clincheck_accepted.connect(on_accepted, dispatch_uid="test-cutover-accepted")
    try:
        # 1. Pause outbound traffic for the import window: a button pressed meanwhile on a
        #    case the old tool sent (not marked yet) sends nothing (docs/migration.md, step 7).
        sent_url = reverse(
            "align_integration:staff-align-initiate-order", kwargs={"case_ref": cases["sent"].uuid}
        )
        with override_switch(SWITCH, active=True):
            assert staff.post(sent_url, HTTP_ACCEPT="application/json").status_code == 503
            import_args = (
                "--orders-csv",
                exported("cases_align_orders.csv", cases, tmp_path),
                "--assets-csv",
                exported("cases_case_asset.csv", cases, tmp_path),
                "--plans-csv",
                exported("plans.csv", cases, tmp_path),
                "--strict",
            )
            code, out = command("align_import_legacy", *import_args)  # sends nothing anyway
        assert code == 0, out
        assert not align_sandbox.requests
        assert "cases marked as sent (never sent again): 4" in out
        assert "plans awaiting the provider's review: 2" in out  # review and failed
        for key in PIDS:
            state = AlignCase.objects.get(case=cases[key])
            assert state.order_sent and state.patient_id == PIDS[key]

        # 2. Outbound traffic resumed, staff press "Send to Align" on every case: only the
        #    fresh one is sent.
        for key, case in cases.items():
            url = reverse(
                "align_integration:staff-align-initiate-order", kwargs={"case_ref": case.uuid}
            )
            answer = staff.post(url, HTTP_ACCEPT="application/json")
            assert answer.json() == {"ok": True, "errors": []}, key
        assert align_sandbox.count("create_patient") == align_sandbox.count("create_order") == 1
        [created] = align_sandbox.calls("create_patient")
        assert created.json["caseId"] == str(cases["fresh"].pk)
        assert created.json["gender"] == "M"  # unknown, sent as DEFAULT_GENDER, and said so
        panel = staff.get(
            reverse("align_integration:staff-align-panel", kwargs={"case_ref": cases["sent"].uuid})
        ).content.decode()
        assert "Already at Align" in panel and "SO-SENT-1" in panel

        # 3. sent: Align's treatment plan arrives; the provider approves it.
        answer = send_callback(
            "treatment_plan.submitted",
            {
                "caseId": str(cases["sent"].pk),
                "planId": "PLAN-SENT",
                "version": 1,
                "createdAt": "2026-11-21T09:00:00Z",
            },
            align_sandbox.callback_secret,
        )
        assert answer.status_code == 200, answer.content
        approve = reverse(
            "align_integration:provider-case-action", kwargs={"case_ref": cases["sent"].uuid}
        )
        assert (
            doctor.post(
                approve, {"action": "approve", "acceptance_screenshot": jpeg_data_url()}
            ).status_code
            == 200
        )

        # 4. review: the plan imported at cutover is revised on day one.
        revise = reverse(
            "align_integration:provider-case-action", kwargs={"case_ref": cases["review"].uuid}
        )
        answer = doctor.post(revise, {"action": "revise", "comment": "Less torque on 13."})
        assert answer.status_code == 200, answer.content

        # 5. approved: aligners are bought; the accept carries the old vault's ids.
        with django_capture_on_commit_callbacks(execute=True):
            signals.aligners_purchased.send(sender=None, case=cases["approved"], user=staff_user)
        [accept] = align_sandbox.calls("clincheck_accept")
        assert accept.form["caseId"] == str(cases["approved"].pk)
        assert (accept.form["vault_id"], accept.form["external_key"]) == (
            "5b2e8f70-1d4c-4e9a-b1f3-9c7d2a6e4f11",
            "screens/approved.jpg",
        )
        assert accepted == [cases["approved"].pk]

        # 6. failed: the revision the old tool could not send, from the revision export.
        revisions = exported("revisions.csv", cases, tmp_path)
        code, out = command("align_clincheck_revise", "--csv", revisions, "--concurrency", "1")
        assert code == 0, out
        comments = {
            call.form["caseId"]: call.form["comments"]
            for call in align_sandbox.calls("clincheck_revise")
        }
        assert comments == {
            str(cases["review"].pk): "Less torque on 13.",
            str(cases["failed"].pk): PROVIDER_MESSAGE,
        }
        assert OLD_NOTE not in str(comments)

        # 7. The old upload script's job: re-upload a sent case's files with its old pid.
        code, out = command(
            "align_upload_assets", "--case", str(cases["sent"].uuid), "--concurrency", "1"
        )
        assert code == 0, out
        [upload_again] = [
            c for c in align_sandbox.calls("upload_assets") if c.form["pId"] == PIDS["sent"]
        ]
        assert upload_again.form["caseId"] == str(cases["sent"].pk)

        # 8. Everything again: the import, every button, every command. Nothing new is sent.
        calls_before = len(align_sandbox.requests)
        assert command("align_import_legacy", *import_args)[0] == 0
        for case in cases.values():
            url = reverse(
                "align_integration:staff-align-initiate-order", kwargs={"case_ref": case.uuid}
            )
            assert staff.post(url, HTTP_ACCEPT="application/json").status_code == 200
        assert command("align_clincheck_revise", "--csv", revisions)[0] == 0
        assert command("align_upload_assets", "--case", str(cases["sent"].uuid))[0] == 0
        with django_capture_on_commit_callbacks(execute=True):
            signals.aligners_purchased.send(sender=None, case=cases["approved"], user=staff_user)
        assert len(align_sandbox.requests) == calls_before
        assert accepted == [cases["approved"].pk]
    finally:
        signals.clincheck_accepted.disconnect(dispatch_uid="test-cutover-accepted")

    # Align never received a second patient or order for any case.
    for key, case in cases.items():
        assert held_at_align(align_sandbox, str(case.pk)) == (1, 1), key
    # Every case took its next step, and none is left waiting on the app.
    states = {key: AlignCase.objects.get(case=case) for key, case in cases.items()}
    assert states["fresh"].order_sent
    assert states["sent"].treatment_plan_id == "PLAN-SENT"
    assert not states["sent"].awaiting_provider_review  # approved by the provider
    assert not states["review"].awaiting_provider_review  # revision requested
    assert not states["failed"].awaiting_provider_review  # revision finally sent
    assert not RemoteOperation.objects.exclude(state=RemoteOperation.SUCCEEDED).exists()

    # No patient value in a log line, a host note or the timeline.
    values = patient_values(*cases.values())
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith("align_integration.sandbox")  # the vendor's stand-in
    )
    notes = "\n".join(CaseNote.objects.values_list("text", flat=True))
    timeline = "\n".join(CaseEvent.objects.values_list("message", flat=True))
    assert notes and timeline and logged
    for value in values:
        assert value not in logged, value
        assert value not in notes, value
        assert value not in timeline, value
    # The host's notes say what happened, where its staff look.
    fresh_notes = list(CaseNote.objects.filter(case=cases["fresh"]).values_list("text", flat=True))
    assert any("sent to Align as M" in text for text in fresh_notes)
    assert any(text.startswith("Sent to Align (patient ") for text in fresh_notes)
    assert CaseNote.objects.filter(
        case=cases["approved"], text__startswith="ClinCheck accept"
    ).exists()
