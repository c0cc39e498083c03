"""The last known reachability of the Align integration service, for the health endpoint.

The health endpoint must never call Align on a probe, so it reads what the app learned
the last time it called: every remote operation's outcome (``workflows.operations``),
every find call of ``align_reconcile`` and ``align_doctor``'s authenticated read note it
here.  One small entry in the ``TOKEN_CACHE`` alias (shared by all processes, like the
token); writing it is one cache ``set``, and a cache that fails never fails the caller.

"Reachable" means a call of ours got an answer Align would give a good request: a
success, or a refusal of that one request (400, 404, 409, 422, 429).  No answer, a 5xx,
and 401/403 (our credentials refused) are not.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from align_integration.client.errors import AlignError
from align_integration.conf import get_setting

logger = logging.getLogger("align_integration.workflows")

ALIGN = "align"
CACHE_KEY = "align_integration:reachability:{service}"
#: Kept this long without a newer call; afterwards the health check says "unknown".
KEEP_SECONDS = 7 * 24 * 3600
REFUSED_CREDENTIALS = (401, 403)


@dataclass(frozen=True)
class Reachability:
    """What the last call to a service showed: reachable or not, when, and how (an HTTP
    status and an error class name, never a message: those may echo patient data)."""

    service: str
    reachable: bool
    at: dt.datetime
    call: str = ""
    status: int | None = None
    error: str = ""

    def describe(self) -> str:
        when = self.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        what = f"{self.call} " if self.call else ""
        if self.reachable:
            return f"last call {what}at {when} answered" + (
                f" (HTTP {self.status})" if self.status else ""
            )
        how = self.error + (f" (HTTP {self.status})" if self.status else "")
        return f"last call {what}at {when} failed: {how}"


def is_reachable(error: AlignError | None) -> bool:
    """Whether a call that ended with ``error`` (``None``: success) reached a working service."""
    if error is None:
        return True
    status = error.status_code
    return status is not None and status < 500 and status not in REFUSED_CREDENTIALS


def note_call(call: str, error: AlignError | None = None, *, service: str = ALIGN) -> None:
    """Remember the outcome of one call to ``service``; never raises."""
    entry = {
        "reachable": is_reachable(error),
        "at": timezone.now().isoformat(),
        "call": call[:64],
        "status": error.status_code if error is not None else None,
        "error": type(error).__name__ if error is not None else "",
    }
    try:
        caches[get_setting("TOKEN_CACHE")].set(
            CACHE_KEY.format(service=service), entry, timeout=KEEP_SECONDS
        )
    except Exception as problem:  # a cache outage must not fail the call that was made
        logger.warning(
            "reachability=unrecorded service=%s error=%s", service, type(problem).__name__
        )


def last_reachability(service: str = ALIGN) -> Reachability | None:
    """The last noted outcome for ``service``, or ``None`` (nothing noted, or expired).

    Raises what the cache raises: the health check reports that as its failure.
    """
    entry: Any = caches[get_setting("TOKEN_CACHE")].get(CACHE_KEY.format(service=service))
    if not isinstance(entry, dict):
        return None
    at = parse_datetime(str(entry.get("at") or ""))
    if at is None:
        return None
    status = entry.get("status")
    return Reachability(
        service=service,
        reachable=bool(entry.get("reachable")),
        at=at.astimezone(dt.UTC),
        call=str(entry.get("call") or ""),
        status=status if isinstance(status, int) else None,
        error=str(entry.get("error") or ""),
    )
