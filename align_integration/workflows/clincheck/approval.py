"""The provider approves a treatment plan: the screenshot is kept, the ClinCheck accept waits.

As in the old tool, approving sends nothing to Align: the acceptance screenshot is stored
(through ``CaseAdapter.store_acceptance_screenshot``) and the ClinCheck accept that carries
it is sent once aligners are bought (``aligners_purchased``).  The host hears of the
approval by ``treatment_plan_approved`` and a case note.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from align_integration import signals
from align_integration.models import AlignCase, CaseAsset, CaseEvent
from align_integration.workflows.clincheck.screenshots import create_acceptance_screenshot
from align_integration.workflows.timeline import add_host_note, record, user_of


def approve_treatment_plan(case: Any, data_url: str, *, user: Any = None) -> CaseAsset:
    """Record the provider's approval with its acceptance screenshot; return the screenshot.

    Raises ``ScreenshotRejected`` (nothing recorded, nothing stored) for a bad screenshot.
    """
    user = user_of(user)
    with transaction.atomic():
        event = record(
            case,
            "provider_approved",
            CaseEvent.INFO,
            "The provider approved the treatment plan; the ClinCheck accept is sent to Align "
            "once aligners are bought.",
            user=user,
        )
        AlignCase.objects.filter(case=case).update(awaiting_provider_review=False)
        # Last, so nothing after it can roll back a row whose file is stored.
        asset = create_acceptance_screenshot(case, data_url, user=user)
        add_host_note(case, event.message, user)  # only once the screenshot is kept
    transaction.on_commit(
        lambda: signals.treatment_plan_approved.send(sender=AlignCase, case=case, asset=asset)
    )
    return asset
