"""Several iTero lab accounts at once (issue 12): one ``IteroConnection`` row per lab account,
plus the sign-in row (no account number); scan revisions supersede each other; the XML
version and the lab status are kept on the scan.

The data step keeps the existing pairing.  The singleton row (pk 1) simply becomes the row
of its account, or the sign-in row when it names none.  A row that was *signed in again*
over a pairing (``authorized`` with an account number) held sign-in tokens, not the
account's: those tokens move to the sign-in row and the account is marked *needs
re-pairing*, so its notifications keep waiting as they did.  Scans without an account
number get the old pairing's.  The id sequence, left behind by the singleton's explicit pk,
is reset so that new rows can be added.  For every Rx downloaded in several revisions, the files of
the older revisions are marked removed (``date_removed``; nothing is deleted), so each case
counts only its current models.
"""

from typing import Any

from django.core.management.color import no_style
from django.db import migrations, models
from django.utils import timezone

AUTHORIZED, NEEDS_REPAIRING = "authorized", "needs_repairing"
TOKEN_FIELDS = ("refresh_token_encrypted", "access_token_encrypted", "access_expires_at")


def _one_row_per_account(connection_model: Any) -> None:
    """Rows for the same account number (never made by 0.x, but be sure): the newest stays."""
    duplicated = (
        connection_model.objects.order_by()
        .values("account_number")
        .annotate(rows=models.Count("pk"))
        .filter(rows__gt=1)
    )
    for group in duplicated:
        rows = connection_model.objects.filter(account_number=group["account_number"])
        keep = rows.order_by("-updated_at", "-pk").first()
        rows.exclude(pk=keep.pk).delete()


def _split_sign_in(connection_model: Any) -> None:
    for row in connection_model.objects.filter(state=AUTHORIZED).exclude(account_number=""):
        sign_in = connection_model.objects.filter(account_number="").first()
        if sign_in is None:
            sign_in = connection_model(account_number="", state=AUTHORIZED)
        for field in (*TOKEN_FIELDS, "endpoints", "region", "discovered_at"):
            setattr(sign_in, field, getattr(row, field))
        sign_in.state = AUTHORIZED
        sign_in.save()
        for field in TOKEN_FIELDS:
            setattr(row, field, None if field == "access_expires_at" else "")
        row.state = NEEDS_REPAIRING
        row.last_error = "signed in again before the upgrade; pair the account again"
        row.state_changed_at = timezone.now()
        row.save()


def _version(revision: str) -> tuple[int, str]:
    digits = revision[1:] if revision.startswith("v") else ""
    return (int(digits), revision) if digits.isdigit() else (-1, revision)


def _supersede_old_revisions(scan_model: Any, asset_model: Any) -> None:
    now = timezone.now()
    downloaded = scan_model.objects.filter(state="downloaded").exclude(case=None)
    by_rx: dict[tuple[Any, str], list[Any]] = {}
    for scan in downloaded.order_by("created_at", "pk"):
        by_rx.setdefault((scan.case_id, scan.rx_id), []).append(scan)
    for (case_id, rx_id), scans in by_rx.items():
        if len(scans) < 2:
            continue
        newest = max(scans, key=lambda scan: (_version(scan.revision), scan.created_at, scan.pk))
        for scan in scans:
            if scan.pk == newest.pk:
                continue
            asset_model.objects.filter(
                case_id=case_id,
                source="itero",
                source_ref__startswith=f"{rx_id}:{scan.revision}:",
                date_removed=None,
            ).update(date_removed=now)
            scan_model.objects.filter(pk=scan.pk).update(state="superseded")


def _reset_id_sequence(connection_model: Any, schema_editor: Any) -> None:
    """The singleton was created with an explicit pk (1), which leaves PostgreSQL's id
    sequence behind: the next row would collide with it."""
    database = schema_editor.connection
    with database.cursor() as cursor:
        for statement in database.ops.sequence_reset_sql(no_style(), [connection_model]):
            cursor.execute(statement)


def forwards(apps: Any, schema_editor: Any) -> None:
    connection_model = apps.get_model("align_integration", "IteroConnection")
    scan_model = apps.get_model("align_integration", "IteroScan")
    asset_model = apps.get_model("align_integration", "CaseAsset")
    _reset_id_sequence(connection_model, schema_editor)
    old = connection_model.objects.filter(pk=1).exclude(account_number="").first()
    _one_row_per_account(connection_model)
    _split_sign_in(connection_model)
    if old is not None:
        scan_model.objects.filter(account_number="").update(account_number=old.account_number)
    scan_model.objects.filter(state="downloaded").update(fetched_assets=["ide"])
    for pk, summary in scan_model.objects.values_list("pk", "order_summary"):
        status = summary.get("status") if isinstance(summary, dict) else None
        if isinstance(status, str) and status:
            scan_model.objects.filter(pk=pk).update(lab_status=status[:64])
    _supersede_old_revisions(scan_model, asset_model)


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0010_vendor_text"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="iteroconnection",
            options={
                "ordering": ["account_number"],
                "permissions": [
                    (
                        "manage_itero_connection",
                        "Can connect, pair and un-pair the iTero lab account",
                    )
                ],
                "verbose_name": "iTero connection",
            },
        ),
        migrations.AddField(
            model_name="iteroscan",
            name="fetched_assets",
            field=models.JSONField(
                blank=True, default=list, help_text="Download asset types stored so far (ide, …)."
            ),
        ),
        migrations.AddField(
            model_name="iteroscan",
            name="lab_status",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The order's lab status, last seen.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="iteroscan",
            name="lab_status_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="iteroscan",
            name="xml_version",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Scan metadata XML version (v50…).",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="iteroscan",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending download"),
                    ("downloading", "Downloading"),
                    ("downloaded", "Downloaded"),
                    ("waiting_for_case", "Waiting for a case"),
                    ("failed", "Failed"),
                    ("returned", "Returned to the doctor"),
                    ("superseded", "Superseded by a newer revision"),
                ],
                db_index=True,
                default="pending",
                max_length=24,
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="iteroconnection",
            constraint=models.UniqueConstraint(
                fields=("account_number",), name="itero_connection_one_row_per_account"
            ),
        ),
    ]
