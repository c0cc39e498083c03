"""``manage.py align_upload_assets``: upload the STL files of many cases to Align.

Replaces the old "Upload Align Assets" ad-hoc script.  For cases that already have an Align
patient (sent by this app, or named by a sales order); once per set of files: a re-run
skips cases whose current files were uploaded already.

    manage.py align_upload_assets --csv upload.csv --report upload-report.csv
"""

from __future__ import annotations

from align_integration.management.batch_command import BatchCommand
from align_integration.workflows.batch.actions import UploadAssets


class Command(BatchCommand):
    help = "Upload the current STL files of many cases that already have an Align patient."
    action_class = UploadAssets
