"""Permissions on top of ``is_staff`` (CONTRACT §10): ``align_integration.send_to_align`` and
``align_integration.manage_itero_connection``."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0005_auto_send_kind"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="aligncase",
            options={
                "permissions": [("send_to_align", "Can send a case (patient data) to Align")],
                "verbose_name": "Align case state",
            },
        ),
        migrations.AlterModelOptions(
            name="iteroconnection",
            options={
                "permissions": [
                    (
                        "manage_itero_connection",
                        "Can connect, pair and un-pair the iTero lab account",
                    )
                ],
                "verbose_name": "iTero connection",
            },
        ),
    ]
