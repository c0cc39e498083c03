"""Taking an operation for a run: one compare-and-set that also counts the attempt.

The copy of the row a run holds may be stale (read before another run's attempt); the
claim then reads the row again and runs on what is stored, so the attempt numbers on the
timeline and in the row stay true.  A row another run holds is left alone, also inside a
caller's transaction, which stays usable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from align_integration.models import CaseEvent, RemoteOperation
from align_integration.workflows.clincheck import perform_clincheck
from tests.ops.test_worker import failed_accept

pytestmark = pytest.mark.django_db


def attempt_entries(operation: RemoteOperation) -> list[str]:
    return list(
        CaseEvent.objects.filter(operation=operation, outcome=CaseEvent.STARTED)
        .order_by("pk")
        .values_list("message", flat=True)
    )


def test_a_stale_copy_runs_on_the_stored_row(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    assert operation.attempts == 1
    stale = RemoteOperation.objects.get(pk=operation.pk)
    # Another run made an attempt after this copy was read.
    RemoteOperation.objects.filter(pk=operation.pk).update(attempts=F("attempts") + 1)
    calls = align_sandbox.count("clincheck_accept")

    assert perform_clincheck(stale).ok

    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    assert operation.attempts == 3 == stale.attempts
    assert attempt_entries(operation)[-1].endswith("attempt 3.")
    assert align_sandbox.count("clincheck_accept") == calls + 1


def test_a_held_operation_is_not_sent(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    held_until = timezone.now() + dt.timedelta(minutes=1)
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.IN_PROGRESS, claimed_until=held_until
    )
    operation.refresh_from_db()
    calls = align_sandbox.count("clincheck_accept")

    with transaction.atomic():  # a view under ATOMIC_REQUESTS, say
        result = perform_clincheck(operation)
        assert RemoteOperation.objects.filter(pk=operation.pk).exists()  # still usable

    assert result.status_code == 409
    assert result.errors == ["This ClinCheck action is being sent right now."]
    assert align_sandbox.count("clincheck_accept") == calls
    operation.refresh_from_db()
    assert (operation.state, operation.attempts) == (RemoteOperation.IN_PROGRESS, 1)
    assert operation.claimed_until == held_until


def test_an_operation_that_succeeded_meanwhile_is_not_sent_again(
    sent_case: Any, align_sandbox: Any
) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    stale = RemoteOperation.objects.get(pk=operation.pk)
    assert perform_clincheck(operation).ok
    calls = align_sandbox.count("clincheck_accept")

    assert perform_clincheck(stale).ok  # the copy says "retry scheduled"; the row, succeeded

    assert align_sandbox.count("clincheck_accept") == calls
    assert len(attempt_entries(operation)) == 2
