"""Before the one-pending-per-Rx constraint (0006): of several notifications still waiting
for the same Rx id and account, keep the oldest; the others are marked ignored (the kept
one is confirmed with the same order look-up, so nothing is lost)."""

from typing import Any

from django.db import migrations

MERGED = "merged into an earlier pending notification for this Rx id"


def merge_pending(apps: Any, schema_editor: Any) -> None:
    notification_model = apps.get_model("align_integration", "IteroNotification")
    pending = notification_model.objects.filter(state="received").order_by("received_at", "pk")
    seen: set[tuple[str, str]] = set()
    extra: list[int] = []
    for pk, rx_id, account_number in pending.values_list("pk", "rx_id", "account_number"):
        key = (rx_id, account_number)
        if key in seen:
            extra.append(pk)
        else:
            seen.add(key)
    for start in range(0, len(extra), 500):
        notification_model.objects.filter(pk__in=extra[start : start + 500]).update(
            state="ignored", outcome=MERGED, next_attempt_at=None
        )


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0006_security_permissions"),
    ]

    operations = [migrations.RunPython(merge_pending, migrations.RunPython.noop)]
