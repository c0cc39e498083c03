"""Help for projects moving off the in-repo Align tool (``tools.align``)."""

from __future__ import annotations

import warnings

from django.conf import settings

LEGACY_SETTINGS = {
    "SDC_CACHING_ENABLED": (
        "SDC_CACHING_ENABLED is no longer read: the Align token is always cached in the "
        "cache alias ALIGN_INTEGRATION['TOKEN_CACHE']. Remove the setting."
    ),
}


def warn_legacy_settings() -> None:
    for name, message in LEGACY_SETTINGS.items():
        if hasattr(settings, name):
            warnings.warn(message, DeprecationWarning, stacklevel=2)
