"""The optional ``viewerUrl`` of a ``treatment_plan.submitted`` event: the ClinCheck viewer.

The provider page links to it, so only a well-formed https URL without credentials is
kept.  A bad one is dropped and the event still counts: the plan itself is what the event
is for, and the protocol makes the link optional, so a bad link never costs the plan (the
sender gets its 2xx, the log says the link was ignored, without its value).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

logger = logging.getLogger("align_integration.callbacks")

MAX_LENGTH = 2000
_https_only = URLValidator(schemes=["https"])


def viewer_url(value: Any) -> str:
    """``value`` if it is an acceptable viewer link, else ``""`` (absent or ignored)."""
    if value is None:
        return ""
    reason = ""
    if not isinstance(value, str) or not value.strip():
        reason = "not_text"
    elif len(value) > MAX_LENGTH:
        reason = "too_long"
    else:
        try:
            _https_only(value)
        except ValidationError:
            reason = "not_https_url"
        else:
            if "@" in urlsplit(value).netloc:
                reason = "credentials"
    if reason:
        logger.info("callback viewer_url=ignored reason=%s", reason)
        return ""
    return value
