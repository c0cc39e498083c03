"""Scan files stored by 0.1 kept the archive's member name in ``source_ref``
(``rxId:revision:<member>``); member names can carry patient names and birth dates.  Each is
replaced by its hash, in the form extraction now writes (``sha256-<40 hex>``, the form 0.1
already used for very long names), so a re-extraction still finds them.  Rows whose file
has an extension off the allowlist get the inert content type; the files themselves stay
where they are (docs/security.md says how to serve them privately)."""

import hashlib
from typing import Any

from django.db import migrations

HASHED = "sha256-"
SAFE_EXTENSIONS = (".stl", ".ply", ".pdf", ".xml", ".jpg", ".jpeg", ".png")
INERT = "application/octet-stream"


def member_ref(name: str) -> str:
    return f"{HASHED}{hashlib.sha256(name.encode()).hexdigest()[:40]}"


def hash_member_names(apps: Any, schema_editor: Any) -> None:
    scan_model = apps.get_model("align_integration", "IteroScan")
    asset_model = apps.get_model("align_integration", "CaseAsset")
    scans = scan_model.objects.exclude(case=None).values_list("case_id", "rx_id", "revision")
    for case_id, rx_id, revision in scans.iterator():
        prefix = f"{rx_id}:{revision}:"
        assets = asset_model.objects.filter(
            case_id=case_id, source="itero", source_ref__startswith=prefix
        )
        for pk, ref in assets.values_list("pk", "source_ref"):
            member = ref[len(prefix) :]
            if member and not member.startswith(HASHED):
                asset_model.objects.filter(pk=pk).update(
                    source_ref=f"{prefix}{member_ref(member)}"[:255]
                )
    unsafe = asset_model.objects.exclude(file="").exclude(content_type=INERT)
    for extension in SAFE_EXTENSIONS:
        unsafe = unsafe.exclude(file__iendswith=extension)
    unsafe.update(content_type=INERT)


class Migration(migrations.Migration):
    dependencies = [
        ("align_integration", "0008_itero_notification_one_pending_per_rx"),
    ]

    operations = [migrations.RunPython(hash_member_names, migrations.RunPython.noop)]
