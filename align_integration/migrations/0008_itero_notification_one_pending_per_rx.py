"""One pending notification per Rx id and account: a repeat adds no row (issue 13)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0007_merge_pending_itero_notifications"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="iteronotification",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "received")),
                fields=("rx_id", "account_number"),
                name="itero_notification_one_pending_per_rx",
            ),
        ),
    ]
