"""ClinCheck: the provider's review (accept and revision requests) and acceptance
screenshots."""

from align_integration.workflows.clincheck.review import (
    APPROVE,
    FLAG,
    REVISE,
    accept_when_aligners_purchased,
    latest_acceptance_screenshot,
    latest_acceptance_screenshots,
    perform_clincheck,
    prepare_accepts,
    prepare_operation,
    set_case_status,
)
from align_integration.workflows.clincheck.screenshots import (
    ScreenshotRejected,
    create_acceptance_screenshot,
)

__all__ = [
    "APPROVE",
    "FLAG",
    "REVISE",
    "ScreenshotRejected",
    "accept_when_aligners_purchased",
    "create_acceptance_screenshot",
    "latest_acceptance_screenshot",
    "latest_acceptance_screenshots",
    "perform_clincheck",
    "prepare_accepts",
    "prepare_operation",
    "set_case_status",
]
