"""Writing the case timeline (``CaseEvent``) without ever writing patient data into it."""

from __future__ import annotations

import logging
from typing import Any

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
) -> CaseEvent:
    """Append one timeline entry and log the same ids and outcome."""
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
    return event
