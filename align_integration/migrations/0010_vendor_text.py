"""Vendor text is no longer kept: the summary fields, and scrubbing rows written by 0.1.

Version 0.1 stored Align's error messages (which may echo patient data) in
``RemoteOperation.last_errors`` and in the timeline entries of failed attempts, and whole
answers in ``RemoteOperation.result``.  This migration rewrites those rows: errors become a
status-only summary, timeline messages keep the step's label and status, results keep ids.
The vendor's old text is dropped, not moved.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import migrations, models

RESULT_KEYS = ("patientId", "orderId", "status", "uploaded")
ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REMOVED = "the vendor's message was removed"


def _kept(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    kept: dict[str, Any] = {}
    for key in RESULT_KEYS:
        value = result.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            kept[key] = value
        elif isinstance(value, str) and ID_SHAPE.fullmatch(value):
            kept[key] = value
    return kept


def scrub(apps: Any, schema_editor: Any) -> None:
    operation_model = apps.get_model("align_integration", "RemoteOperation")
    event_model = apps.get_model("align_integration", "CaseEvent")
    for operation in operation_model.objects.all().iterator():
        result = _kept(operation.result)
        errors = operation.last_errors
        if errors:
            status = operation.last_status_code
            errors = [f"Align answered {status} ({REMOVED})" if status else f"Failed ({REMOVED})"]
        if result != operation.result or errors != operation.last_errors:
            operation_model.objects.filter(pk=operation.pk).update(
                result=result, last_errors=errors
            )
    failures = event_model.objects.filter(
        operation__isnull=False, outcome__in=("failed", "retry_scheduled")
    )
    for event in failures.iterator():
        label, found, _rest = event.message.partition(" failed")
        if not found:
            continue
        status = f"HTTP {event.status_code}" if event.status_code else "no answer"
        event_model.objects.filter(pk=event.pk).update(
            message=f"{label} failed ({status}; {REMOVED})."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0009_hash_itero_member_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="remoteoperation",
            name="last_error_code",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Stable code of the last failure (rejected, not_found, timeout…).",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="remoteoperation",
            name="vendor_detail",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The vendor's own error messages of the last failure, redacted; for "
                "support, shown to superusers only.",
            ),
        ),
        migrations.AlterField(
            model_name="remoteoperation",
            name="last_errors",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The app's summary of the last failure, never vendor text.",
            ),
        ),
        migrations.AlterField(
            model_name="remoteoperation",
            name="result",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The ids of Align's answer, not the whole answer.",
            ),
        ),
        migrations.RunPython(scrub, migrations.RunPython.noop, elidable=True),
    ]
