"""Importing the treatment plans and statuses of cases in flight at cutover.

A case waiting for the provider's review when the old tool is switched off must be
reviewable on day one, not once Align sends a new plan.  Each row (``case_id``,
``plan_id``, ``version``, ``status``, ``received_at``) becomes the case's plan on
``AlignCase`` when it is newer than the one on file (a greater version, or the same
version received later), with the same rule as the ``treatment_plan.submitted`` callback;
the status is taken when no newer status is on file.  The plan awaits the provider's
review when the status is one of ``LEGACY_IMPORT["REVIEW_STATUSES"]`` and the provider has
not approved it already (no acceptance screenshot from its date on).  The host's
``on_treatment_plan_ready`` is not called: the host's own case status came over with it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from align_integration.models import AlignCase, CaseAsset
from align_integration.workflows.legacy.sources import LegacyRow, legacy_settings

MAX_VERSION = 2_147_483_647


def plan_version(row: LegacyRow, problems: list[str]) -> int | None:
    """The row's version: a whole number (``3``, or ``3.0`` as spreadsheets write it)."""
    text = row.text("version")
    if not text:
        problems.append("missing version")
        return None
    whole = text[:-2] if text.endswith(".0") else text
    if not (whole.isascii() and whole.isdigit()) or int(whole) > MAX_VERSION:
        problems.append("version is not a whole number from 0")
        return None
    return int(whole)


def review_statuses() -> set[str]:
    return {str(status).strip().lower() for status in legacy_settings()["REVIEW_STATUSES"]}


def approved_since(case: Any, moment: dt.datetime) -> bool:
    """The provider approved a plan received at ``moment``: a screenshot from then on."""
    return (
        CaseAsset.objects.current()
        .filter(case=case, kind=CaseAsset.CCACCEPTSCREEN, date_created__gte=moment)
        .exists()
    )


def _newer(
    state: AlignCase, plan_id: str, version: int, status: str, received_at: dt.datetime
) -> tuple[bool, bool, bool]:
    """``(same plan, newer plan, newer status)`` than what ``state`` holds."""
    same = state.treatment_plan_id == plan_id and state.treatment_plan_version == version
    newer_plan = not same and (
        state.treatment_plan_at is None
        or (version, received_at) > (state.treatment_plan_version or 0, state.treatment_plan_at)
    )
    newer_status = bool(status) and (
        state.status_changed_at is None or received_at > state.status_changed_at
    )
    return same, newer_plan, newer_status


def import_plan(
    case: Any,
    *,
    plan_id: str,
    version: int,
    status: str,
    received_at: dt.datetime,
    dry_run: bool,
) -> tuple[str, bool]:
    """Apply one plan row; returns ``(skip reason or "", the plan now awaits review)``."""
    awaiting = status.lower() in review_statuses() and not approved_since(case, received_at)
    if dry_run:
        state = AlignCase.objects.filter(case=case).first() or AlignCase(case=case)
        same, newer_plan, newer_status = _newer(state, plan_id, version, status, received_at)
        if not (newer_plan or newer_status):
            return ("already imported" if same else "a newer plan and status are on file"), False
        return "", awaiting and newer_plan
    with transaction.atomic():
        state = AlignCase.objects.select_for_update().get(pk=AlignCase.objects.for_case(case).pk)
        same, newer_plan, newer_status = _newer(state, plan_id, version, status, received_at)
        if not (newer_plan or newer_status):
            return ("already imported" if same else "a newer plan and status are on file"), False
        fields = ["updated_at"]
        if newer_plan:
            state.treatment_plan_id = plan_id
            state.treatment_plan_version = version
            state.treatment_plan_at = received_at
            state.awaiting_provider_review = awaiting
            fields += [
                "treatment_plan_id",
                "treatment_plan_version",
                "treatment_plan_at",
                "awaiting_provider_review",
            ]
        if newer_status:
            state.status = status
            state.status_changed_at = received_at
            fields += ["status", "status_changed_at"]
        state.save(update_fields=fields)
    return "", awaiting and newer_plan


def check_plan_row(row: LegacyRow, problems: list[str]) -> tuple[str, int | None, str]:
    """``(plan_id, version, status)`` of a row, problems appended (no values in them)."""
    plan_id = row.text("plan_id")
    if not plan_id:
        problems.append("missing plan id")
    elif len(plan_id) > 64:
        problems.append("plan id is longer than 64 characters")
    version = plan_version(row, problems)
    status = row.text("status")
    if len(status) > 64:
        problems.append("status is longer than 64 characters")
    return plan_id, version, status
