"""The foreign key to the host's case model, named by ``ALIGN_INTEGRATION_CASE_MODEL``.

The shipped migrations refer to the setting (like ``AUTH_USER_MODEL``), so one set of
migrations fits every host project.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from align_integration.conf import CASE_MODEL_SETTING, case_model_label


def case_model_reference() -> str:
    label = case_model_label()
    if not label or label.count(".") != 1:
        raise ImproperlyConfigured(
            f"{CASE_MODEL_SETTING} must name the host's case model as 'app_label.ModelName' "
            f"(like AUTH_USER_MODEL); it is {label!r}."
        )
    return label


def case_foreign_key(related_name: str, **kwargs: Any) -> models.ForeignKey:
    kwargs.setdefault("on_delete", models.CASCADE)
    return models.ForeignKey(case_model_reference(), related_name=related_name, **kwargs)
