"""The provider's review of a treatment plan, enforced on the server (CONTRACT.md §10).

Approve and revise act only on a plan that awaits review (``AlignCase.awaiting_provider_review``),
and only on the plan the provider saw: the forms post its id and version, and a plan that
is not the one under review answers 409 with nothing stored and nothing sent.  Approving
closes the review in the same transaction that stores the screenshot; a revision request
closes it *before* it is sent (so a second request, also a concurrent one, finds it closed)
and opens it again only if nothing is on its way to Align.  A new plan from Align
(``treatment_plan.submitted``) opens the review again.

A small per-case limit (``PROVIDER_ACTION_LIMIT`` actions per ``PROVIDER_ACTION_WINDOW``
seconds, counted in the shared ``TOKEN_CACHE``) keeps a script from storing screenshot
after screenshot or flooding Align with revision requests.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from align_integration import signals
from align_integration.conf import get_setting
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import add_host_note, record, user_of

logger = logging.getLogger("align_integration.workflows")

NOT_AWAITING = (
    "No treatment plan awaits your review: none has arrived yet, or it was already reviewed."
)
STALE = "This is no longer the treatment plan under review; reload the page to see the current one."
BAD_VERSION = "plan_version must be a whole number."
TOO_MANY = "Too many review actions on this case in a short time; try again in a few minutes."
RATE_KEY = "align_integration:review_actions:{case}:{window}"


class ReviewRefused(Exception):
    """The action is refused before anything is stored or sent; ``status_code`` and why."""

    def __init__(self, status_code: int, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.retry_after = retry_after

    def result(self) -> AlignResult:
        return AlignResult(self.status_code, [self.reason])


@dataclass(frozen=True)
class PlanChoice:
    """The plan a form was about: ``plan_id`` and ``plan_version`` as posted (each optional:
    a client that sends neither acts on the plan under review, if there is one)."""

    plan_id: str = ""
    version: int | None = None

    @classmethod
    def from_form(cls, data: Mapping[str, Any]) -> PlanChoice:
        """Read ``plan_id`` and ``plan_version``; :class:`ReviewRefused` (400) when malformed."""
        plan_id = str(data.get("plan_id") or "").strip()
        raw = str(data.get("plan_version") or "").strip()
        if not raw:
            return cls(plan_id[:128], None)
        if not raw.isdigit() or len(raw) > 10:
            raise ReviewRefused(400, BAD_VERSION)
        return cls(plan_id[:128], int(raw))


def take_action_slot(case: Any) -> None:
    """Count one approve/revise on ``case``; :class:`ReviewRefused` (429) over the limit."""
    limit = int(get_setting("PROVIDER_ACTION_LIMIT"))
    window = max(1, int(get_setting("PROVIDER_ACTION_WINDOW")))
    if limit <= 0:
        return
    now = time.time()
    bucket = int(now // window)
    cache = caches[get_setting("TOKEN_CACHE")]
    key = RATE_KEY.format(case=case.pk, window=bucket)
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 5)
        count = 1
    if count > limit:
        retry_after = max(1, int((bucket + 1) * window - now))
        logger.info("case=%s action=provider_review outcome=rate_limited", case.pk)
        raise ReviewRefused(429, TOO_MANY, retry_after=retry_after)


def _plan_under_review(case: Any, choice: PlanChoice) -> AlignCase:
    """The case's state row, locked, when ``choice`` is the plan awaiting review.

    Call inside ``transaction.atomic()``; raises :class:`ReviewRefused` (409) otherwise.
    """
    state = AlignCase.objects.select_for_update().filter(case=case).first()
    if state is None or not state.treatment_plan_id or not state.awaiting_provider_review:
        logger.info("case=%s action=provider_review outcome=refused reason=not_awaiting", case.pk)
        raise ReviewRefused(409, NOT_AWAITING)
    stale = (choice.plan_id and choice.plan_id != state.treatment_plan_id) or (
        choice.version is not None and choice.version != state.treatment_plan_version
    )
    if stale:
        logger.info("case=%s action=provider_review outcome=refused reason=stale_plan", case.pk)
        raise ReviewRefused(409, STALE)
    return state


def _close(state: AlignCase) -> None:
    AlignCase.objects.filter(pk=state.pk).update(
        awaiting_provider_review=False, updated_at=timezone.now()
    )


def approve_plan(
    case: Any, choice: PlanChoice, store_screenshot: Callable[[], Any], *, user: Any = None
) -> None:
    """Close the review of the plan under review and store its acceptance screenshot, in
    one transaction: a rejected screenshot (the exception ``store_screenshot`` raises)
    leaves the plan awaiting review and nothing stored.

    Once the screenshot is kept, the host gets the case note (``add_case_note``) and, on
    commit, the signal ``treatment_plan_approved`` (``case=``, ``asset=`` what
    ``store_screenshot`` returned: the screenshot's ``CaseAsset`` record).
    """
    with transaction.atomic():
        state = _plan_under_review(case, choice)
        event = record(
            case,
            "provider_approved",
            CaseEvent.INFO,
            f"The provider approved treatment plan {state.treatment_plan_id} "
            f"version {state.treatment_plan_version}; the ClinCheck accept is sent to Align "
            "once aligners are bought.",
            user=user,
        )
        _close(state)
        # Last, so nothing after it can roll back a row whose file is stored.
        asset = store_screenshot()
        add_host_note(case, event.message, user_of(user))  # only once the screenshot is kept
    transaction.on_commit(
        lambda: signals.treatment_plan_approved.send(sender=AlignCase, case=case, asset=asset)
    )


def _revision_on_its_way(case: Any, since: dt.datetime) -> bool:
    """A revision request of this case touched since ``since`` will still reach Align."""
    touched = Q(updated_at__gte=since) | Q(state=RemoteOperation.IN_PROGRESS)
    return (
        RemoteOperation.objects.filter(touched, case=case, kind=RemoteOperation.CLINCHECK_REVISE)
        .exclude(state=RemoteOperation.FAILED)
        .exists()
    )


def request_revision(case: Any, choice: PlanChoice, send: Callable[[], AlignResult]) -> AlignResult:
    """Close the review of the plan under review, then ``send`` the revision request.

    When the request is refused or fails for good, the plan awaits review again (the
    provider may correct the comment or approve); a request retried in the background
    keeps it closed, since it will still be sent.
    """
    with transaction.atomic():
        state = _plan_under_review(case, choice)
        _close(state)
    started = timezone.now()
    try:
        result = send()
    except BaseException:
        _reopen_unless_sent(case, state, started)
        raise
    if not result.ok:
        _reopen_unless_sent(case, state, started)
    return result


def _reopen_unless_sent(case: Any, state: AlignCase, since: dt.datetime) -> None:
    """The plan awaits review again, unless a revision request is on its way to Align or
    a newer plan arrived meanwhile (the update matches the plan that was closed)."""
    if _revision_on_its_way(case, since):
        return
    AlignCase.objects.filter(
        pk=state.pk,
        treatment_plan_id=state.treatment_plan_id,
        treatment_plan_version=state.treatment_plan_version,
        awaiting_provider_review=False,
    ).update(awaiting_provider_review=True, updated_at=timezone.now())
