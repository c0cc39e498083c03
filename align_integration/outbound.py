"""The kill switch: while the waffle switch ``align-outbound-paused`` is active, nothing is
sent to Align or iTero from any path.

The check lives where every outbound path passes: the remote-operation engine
(``workflows.operations.run_operation``) for Align, and the iTero workflows' entry points.
They raise :class:`OutboundPaused`; entry points map it to 503 (web), ``paused`` (batch
rows) or "leave it due" (worker, tasks, receivers).  Work is never dropped: an operation
that was due stays due, and one asked for by a signal receiver is scheduled to run once
the switch is off.

This module sits at the bottom of the layers (it reads only waffle), so any layer, the
HTTP client included, may ask it.
"""

from __future__ import annotations

from typing import Any

import waffle
from django.db import DatabaseError

SWITCH = "align-outbound-paused"
PAUSED_MESSAGE = (
    "Outbound traffic to Align and iTero is paused (waffle switch "
    f"'{SWITCH}'): nothing was sent. It can be sent once the switch is off."
)


class OutboundPaused(Exception):
    """Raised instead of sending while the switch is active.

    ``operation`` is the ``RemoteOperation`` that was not sent, when there is one (a
    receiver schedules it for later).  The message names the switch and holds no data.
    """

    status_code = 503

    def __init__(self, message: str = PAUSED_MESSAGE, *, operation: Any = None) -> None:
        super().__init__(message)
        self.operation = operation


def outbound_paused() -> bool:
    """True while the ``align-outbound-paused`` switch is active."""
    return bool(waffle.switch_is_active(SWITCH))


def ensure_outbound_allowed(*, operation: Any = None) -> None:
    """Raise :class:`OutboundPaused` while the switch is active."""
    if outbound_paused():
        raise OutboundPaused(operation=operation)


def guard_request() -> None:
    """The HTTP clients' last-line check, before every request.

    Like :func:`ensure_outbound_allowed`, except that a switch that cannot be read (a
    process with no database, such as a token-refresh script) does not stop the request:
    the workflows have checked the switch already wherever work is recorded.
    """
    try:
        paused = outbound_paused()
    except DatabaseError:
        return
    if paused:
        raise OutboundPaused()
