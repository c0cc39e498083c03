"""HTTP clients for Align's services: sessions, tokens, retries and errors.  No models here."""

from align_integration.client.errors import (
    AlignAPIError,
    AlignAuthenticationError,
    AlignConfigurationError,
    AlignConnectionError,
    AlignError,
    AlignNotFound,
    AlignProtocolError,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceUnavailable,
    AlignTimeout,
)
from align_integration.client.http import BaseClient
from align_integration.client.service import AlignServiceClient

__all__ = [
    "AlignAPIError",
    "AlignAuthenticationError",
    "AlignConfigurationError",
    "AlignConnectionError",
    "AlignError",
    "AlignNotFound",
    "AlignProtocolError",
    "AlignRateLimited",
    "AlignRequestRejected",
    "AlignServiceClient",
    "AlignServiceUnavailable",
    "AlignTimeout",
    "BaseClient",
]
