"""``Align``: the facade with the old in-repo tool's method names and return shapes.

``Align()`` makes no network call; ``align.token`` fetches (or reads the shared cached)
bearer token on first use.  Results unpack as ``status_code, errors``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from align_integration.client.service import AlignServiceClient
from align_integration.models import CaseAsset
from align_integration.workflows import clincheck, orders
from align_integration.workflows.clincheck import screenshots
from align_integration.workflows.results import AlignResult


class Align:
    """Entry point for host code, views and commands."""

    def __init__(self, client: AlignServiceClient | None = None) -> None:
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> AlignServiceClient:
        return AlignServiceClient()

    @property
    def token(self) -> str:
        """The bearer token, shared by every process through the token cache."""
        return self.client.token

    def initiate_align_order(self, request_or_user: Any, case: Any) -> AlignResult:
        """Create patient -> primary order (IAS) -> upload assets, resuming after failures."""
        return orders.initiate_align_order(request_or_user, case, client=self.client)

    def create_acceptance_screenshot(self, case: Any, data_url: str, user: Any = None) -> CaseAsset:
        """Store an html2canvas JPEG data URL as the case's acceptance screenshot.

        Raises ``align_integration.workflows.clincheck.screenshots.ScreenshotRejected`` (a
        ``ValueError``) with the reason when the data URL is not an acceptable JPEG.
        """
        return screenshots.create_acceptance_screenshot(case, data_url, user=user)

    def set_case_status(
        self, user: Any, case: Any, action: str, comment: str | None = None
    ) -> AlignResult:
        """``"approve"``: ClinCheck accept with the newest screenshot; ``"revise"``: revision."""
        return clincheck.set_case_status(user, case, action, comment, client=self.client)
