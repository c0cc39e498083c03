"""A host with its own scan storage, its own vault and its own case notes: every adapter
method of the cutover, through tests.adapters.VaultHostAdapter (models in tests.testapp).

Eligibility, the upload step (label and dedupe key), ``align_upload_assets`` and the worker
read ``stl_files``; the acceptance screenshot is kept in the host's vault and ClinCheck
accept sends the vault's ids; the chief concern is the adapter's; notes and signals reach
the host, and a failing note never breaks a flow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration import Align, signals
from align_integration.cases import can_send_to_align
from align_integration.models import AlignCase, CaseAsset, CaseEvent, RemoteOperation
from align_integration.worker import run_due_operations
from align_integration.workflows.orders.uploads import upload_dedupe_key
from tests.commands import batch
from tests.cutover_kit import patient_values
from tests.images import jpeg_data_url
from tests.testapp.models import CaseNote, ScanFile, VaultScreenshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def vault_host(settings: Any, align_sandbox: Any, flags: Any) -> Any:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.VaultHostAdapter",
        "CHIEF_CONCERN": "",  # the adapter gives its own
    }
    flags("set-align-order-status")
    return align_sandbox


@pytest.fixture
def host_case(make_case: Any, provider: Any) -> Any:
    """A case whose two scan files live in the host's ScanFile table, none in CaseAsset."""
    case = make_case(stl_files=0, provider=provider)
    for n in (1, 2):
        ScanFile.objects.create(
            case=case, name=f"scan-{n}.stl", vault_id=f"SV-{n}", external_key=f"scans/{n}"
        )
    return case


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The cutover signals received (connected by dispatch_uid, disconnected by it)."""
    got: list[tuple[str, dict[str, Any]]] = []
    wanted = {
        "treatment_plan_approved": signals.treatment_plan_approved,
        "revision_requested": signals.revision_requested,
        "clincheck_accepted": signals.clincheck_accepted,
    }
    for name, signal in wanted.items():

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            got.append((_name, kwargs))

        signal.connect(receiver, dispatch_uid=f"test-host-{name}", weak=False)
    yield got
    for name, signal in wanted.items():
        signal.disconnect(dispatch_uid=f"test-host-{name}")


def event_messages(case: Any, action: str) -> list[str]:
    return list(
        CaseEvent.objects.filter(case=case, action=action)
        .order_by("pk")
        .values_list("message", flat=True)
    )


def test_scan_files_in_the_host_model_drive_every_upload_path(
    vault_host: Any, host_case: Any
) -> None:
    assert not CaseAsset.objects.filter(case=host_case).exists()
    eligibility = can_send_to_align(host_case)
    assert eligibility.ok
    assert ("At least 2 STL files (2 on file)", True) in eligibility.checks

    assert Align().initiate_align_order(None, host_case).ok
    assert "Upload assets (2 STL files): done." in event_messages(host_case, "upload_assets")
    upload = RemoteOperation.objects.get(case=host_case, kind="upload_assets")
    assert upload.dedupe_key == upload_dedupe_key(host_case)
    assert upload.payload == {"file_count": 2}

    # The batch command sees the same files: already uploaded, nothing sent again.
    code, out = batch("align_upload_assets", "--case", str(host_case.uuid))
    assert code == 0 and "skipped: already done" in out
    assert vault_host.count("upload_assets") == 1

    # A new scan file is a new file set: uploaded once more, with its own label.
    ScanFile.objects.create(case=host_case, name="scan-3.stl", vault_id="SV-3", external_key="s/3")
    code, out = batch("align_upload_assets", "--case", str(host_case.uuid))
    assert code == 0, out
    assert vault_host.count("upload_assets") == 2
    assert "Upload assets (3 STL files): done." in event_messages(host_case, "upload_assets")

    ScanFile.objects.filter(case=host_case).update(removed=True)
    assert not can_send_to_align(host_case).ok
    code, out = batch("align_upload_assets", "--case", str(host_case.uuid))
    assert code == 1 and "The case has no STL files to upload." in out


def test_the_worker_resumes_an_upload_of_the_host_files(vault_host: Any, host_case: Any) -> None:
    vault_host.inject_fault("upload_assets", status=503, times=None)
    assert Align().initiate_align_order(None, host_case).status_code == 503
    upload = RemoteOperation.objects.get(case=host_case, kind="upload_assets")
    assert upload.state == RemoteOperation.RETRY_SCHEDULED
    vault_host.clear_faults()
    RemoteOperation.objects.filter(pk=upload.pk).update(next_attempt_at=upload.created_at)

    assert run_due_operations() == 1
    upload.refresh_from_db()
    assert upload.state == RemoteOperation.SUCCEEDED  # current files: resumed, not parked
    assert AlignCase.objects.get(case=host_case).order_sent


def test_a_changed_host_file_set_supersedes_a_waiting_upload(
    vault_host: Any, host_case: Any
) -> None:
    vault_host.inject_fault("upload_assets", status=503, times=None)
    Align().initiate_align_order(None, host_case)
    first = RemoteOperation.objects.get(case=host_case, kind="upload_assets")
    ScanFile.objects.create(case=host_case, name="scan-3.stl", vault_id="SV-3", external_key="s/3")
    vault_host.clear_faults()
    RemoteOperation.objects.filter(pk=first.pk).update(next_attempt_at=first.created_at)

    run_due_operations()
    first.refresh_from_db()
    assert first.state == RemoteOperation.FAILED
    assert "Superseded" in first.last_errors[0]
    current = RemoteOperation.objects.get(
        case=host_case, kind="upload_assets", payload__file_count=3
    )
    assert current.state == RemoteOperation.SUCCEEDED


def test_the_screenshot_is_kept_in_the_host_vault_and_accept_sends_its_ids(
    vault_host: Any,
    host_case: Any,
    provider: Any,
    received: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert Align().initiate_align_order(None, host_case).ok
    AlignCase.objects.filter(case=host_case).update(
        treatment_plan_id="PL-1", treatment_plan_version=1, awaiting_provider_review=True
    )
    doctor = Client()
    doctor.force_login(provider.user)
    action = reverse(
        "align_integration:provider-case-action", kwargs={"case_ref": str(host_case.uuid)}
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor.post(
            action,
            {"action": "approve", "acceptance_screenshot": jpeg_data_url()},
            HTTP_ACCEPT="application/json",
        )
    assert response.status_code == 200, response.content

    [shot] = VaultScreenshot.objects.filter(case=host_case)
    assert bytes(shot.content).startswith(b"\xff\xd8\xff")
    [record] = CaseAsset.objects.filter(case=host_case, kind=CaseAsset.CCACCEPTSCREEN)
    assert (record.vault_id, record.external_key, record.source) == (
        shot.vault_id,
        shot.external_key,
        "host",
    )
    assert not record.file  # the file is in the host's vault, not in Django storage
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.jpg"))
    assert received == [("treatment_plan_approved", {"case": host_case, "asset": record})]
    assert not AlignCase.objects.get(case=host_case).awaiting_provider_review

    with django_capture_on_commit_callbacks(execute=True):
        signals.aligners_purchased.send(sender=None, case=host_case, user=None)
    [accept] = vault_host.calls("clincheck_accept")
    assert (accept.form["vault_id"], accept.form["external_key"]) == (
        shot.vault_id,
        shot.external_key,
    )
    assert [name for name, _ in received] == ["treatment_plan_approved", "clincheck_accepted"]
    # Bought again: already accepted, not sent, not announced again.
    with django_capture_on_commit_callbacks(execute=True):
        signals.aligners_purchased.send(sender=None, case=host_case, user=None)
    assert vault_host.count("clincheck_accept") == 1
    assert [name for name, _ in received].count("clincheck_accepted") == 1


def test_the_chief_concern_is_the_adapters(vault_host: Any, host_case: Any) -> None:
    assert Align().initiate_align_order(None, host_case).ok
    [order] = vault_host.calls("create_order")
    assert order.json["chiefConcern"] == "Crowding (full)"


def test_no_chief_concern_at_all_refuses_to_send(
    align_sandbox: Any, make_case: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "CHIEF_CONCERN": "  "}
    case = make_case()
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 400
    assert "CHIEF_CONCERN" in errors[0]
    assert not align_sandbox.requests


def test_the_host_gets_a_note_for_every_outcome_the_old_tool_noted(
    vault_host: Any,
    host_case: Any,
    provider: Any,
    received: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    vault_host.inject_fault("create_order", status=503, times=None)
    assert Align().initiate_align_order(None, host_case).status_code == 503
    vault_host.clear_faults()
    assert Align().initiate_align_order(None, host_case).ok
    AlignCase.objects.filter(case=host_case).update(
        treatment_plan_id="PL-1", treatment_plan_version=1, awaiting_provider_review=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            Align()
            .set_case_status(provider.user, host_case, "revise", comment="Close the gap at 11/21")
            .ok
        )
    vault_host.inject_fault("clincheck_revise", status=422, times=1, body={"errors": ["no"]})
    assert not Align().set_case_status(provider.user, host_case, "revise", comment="Again").ok

    notes = list(CaseNote.objects.filter(case=host_case).order_by("pk"))
    texts = [note.text for note in notes]
    assert texts[0] == "Create patient: done."
    assert texts[1].startswith("Create primary order (IAS) failed (")
    assert "retry in" in texts[1] and "503" in texts[1]
    assert texts[2:5] == [
        "Create primary order (IAS): done.",
        "Upload assets (2 STL files): done.",
        f"Sent to Align (patient {AlignCase.objects.get(case=host_case).patient_id}, "
        f"order {AlignCase.objects.get(case=host_case).order_id}).",
    ]
    assert texts[5] == "ClinCheck revision request: done."
    assert texts[6].startswith("ClinCheck revision request failed: ") and "422" in texts[6]
    assert notes[5].user == provider.user
    # Each note is the timeline's own text, and none holds patient data.
    timeline = set(CaseEvent.objects.filter(case=host_case).values_list("message", flat=True))
    assert set(texts) <= timeline
    for value in patient_values(host_case):
        assert not any(value in text for text in texts)
    assert received == [
        ("revision_requested", {"case": host_case, "comment": "Close the gap at 11/21"})
    ]
    # The accepted revision request means the plan no longer awaits the provider.
    assert not AlignCase.objects.get(case=host_case).awaiting_provider_review


def test_a_failing_host_note_never_breaks_the_flow(
    align_sandbox: Any, make_case: Any, settings: Any, caplog: Any, postgres: None
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.FailingNotesAdapter",
    }
    case = make_case(last_name="Zebulonsky")
    with caplog.at_level(logging.INFO, logger="align_integration"):
        assert Align().initiate_align_order(None, case).ok
    assert AlignCase.objects.get(case=case).order_sent
    failures = [r.getMessage() for r in caplog.records if "host_note=failed" in r.getMessage()]
    assert failures and all("error=ProgrammingError" in line for line in failures)
    assert "Zebulonsky" not in caplog.text
