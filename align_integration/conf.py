"""One resolver for the ``ALIGN_INTEGRATION`` settings dict.

Values come from ``settings.ALIGN_INTEGRATION`` merged over :mod:`defaults`, nested dicts
merged key by key.  Nothing is cached, so ``override_settings`` in tests just works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from align_integration.defaults import DEFAULTS

SETTINGS_NAME = "ALIGN_INTEGRATION"
CASE_MODEL_SETTING = "ALIGN_INTEGRATION_CASE_MODEL"


def _merge(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            merged[key] = _merge(defaults[key], value)
        else:
            merged[key] = value
    return merged


def align_settings() -> dict[str, Any]:
    """The whole settings dict, defaults filled in."""
    return _merge(DEFAULTS, getattr(django_settings, SETTINGS_NAME, None) or {})


def get_setting(*path: str) -> Any:
    """A single value, e.g. ``get_setting("SERVICE", "BASE_URL")``."""
    value: Any = align_settings()
    for key in path:
        value = value[key]
    return value


def case_model_label() -> str:
    """The host's case model label (``"app_label.ModelName"``)."""
    return getattr(django_settings, CASE_MODEL_SETTING, "")
