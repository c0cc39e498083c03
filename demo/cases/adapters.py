"""The demo's case adapter: the default mapping, plus moving the case into the provider portal.

The demo's models use the conventional names, so only the hook that changes the host's
own state needs overriding.  Named in ``ALIGN_INTEGRATION["CASE_ADAPTER"]``.
"""

from __future__ import annotations

from typing import Any

from align_integration.adapters import CaseAdapter


class DemoCaseAdapter(CaseAdapter):
    def on_treatment_plan_ready(self, case: Any) -> None:
        """A treatment plan arrived from Align: the provider portal shows the case now.

        Called inside the callback's transaction, so the status change and the app's own
        record of the plan are saved together (or not at all).
        """
        case.status = case.IN_PROVIDER_PORTAL
        case.save(update_fields=["status"])
