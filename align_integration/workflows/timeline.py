"""Writing the case timeline (``CaseEvent``) without ever writing patient data into it.

Entries of the outcomes the old tool wrote a case note for are also given to the host
(``CaseAdapter.add_case_note``), with the same patient-free text.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from align_integration.adapters import CaseAdapter, get_adapter
from align_integration.models import CaseEvent, RemoteOperation
from align_integration.workflows.errors import safe_request_id

logger = logging.getLogger("align_integration.workflows")


def user_of(request_or_user: Any) -> Any:
    """The authenticated user behind a request or a user, or ``None``."""
    user = getattr(request_or_user, "user", request_or_user)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


def record(
    case: Any,
    action: str,
    outcome: str,
    message: str = "",
    *,
    status_code: int | None = None,
    request_id: str = "",
    operation: RemoteOperation | None = None,
    user: Any = None,
    note: bool = False,
) -> CaseEvent:
    """Append one timeline entry and log the same ids and outcome.

    ``note``: the outcome is one the old tool wrote a case note for; the host receives
    the text through ``CaseAdapter.add_case_note``.
    """
    event = CaseEvent.objects.create(
        case=case,
        action=action,
        outcome=outcome,
        message=message[:2000],
        status_code=status_code,
        request_id=safe_request_id(request_id),  # a vendor header: kept only if id-shaped
        operation=operation,
        user=user_of(user),
    )
    logger.info(
        "case=%s action=%s outcome=%s status=%s operation=%s",
        case.pk,
        action,
        outcome,
        status_code if status_code is not None else "-",
        operation.pk if operation is not None else "-",
    )
    if note:
        add_host_note(case, event.message, user_of(user))
    return event


def add_host_note(case: Any, text: str, user: Any = None) -> None:
    """Give ``text`` to the host's ``add_case_note``; a failure there is logged, not raised.

    The call runs in a savepoint, so a host note that fails in the database leaves the
    caller's transaction usable.
    """
    adapter = get_adapter()
    if type(adapter).add_case_note is CaseAdapter.add_case_note:
        return  # the default does nothing: no savepoint for it on every outcome
    try:
        with transaction.atomic():
            adapter.add_case_note(case, text, user)
    except Exception as error:  # the host's code: never let it break the flow
        logger.warning(
            "case=%s host_note=failed error=%s", getattr(case, "pk", "-"), type(error).__name__
        )
