"""Template context every demo page gets: where the sandbox is."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def demo(request: HttpRequest) -> dict[str, str]:
    return {"sandbox_url": settings.SANDBOX_URL}
