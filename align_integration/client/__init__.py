"""HTTP clients for Align's services: sessions, tokens, retries and errors.  No models here."""

from align_integration.client.errors import (
    AlignAPIError,
    AlignAuthenticationError,
    AlignConnectionError,
    AlignError,
    AlignNotFound,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceUnavailable,
)
from align_integration.client.service import AlignServiceClient

__all__ = [
    "AlignAPIError",
    "AlignAuthenticationError",
    "AlignConnectionError",
    "AlignError",
    "AlignNotFound",
    "AlignRateLimited",
    "AlignRequestRejected",
    "AlignServiceClient",
    "AlignServiceUnavailable",
]
