"""``manage.py align_clincheck_revise``: ClinCheck revision requests for many cases.

Replaces the old "ClinCheck Revision" ad-hoc script.  The comment comes from the CSV's
``comment`` column (``--comment`` fills empty cells, and is the comment for ``--case``).
A re-run skips requests already sent for the same treatment plan and comment.

    manage.py align_clincheck_revise --csv revisions.csv --report revise-report.csv
    manage.py align_clincheck_revise --case 3f1c… --comment "Close the space at 11/21."
"""

from __future__ import annotations

from align_integration.management.batch_command import BatchCommand
from align_integration.workflows.batch.actions import ClinCheckRevise


class Command(BatchCommand):
    help = "ClinCheck revision requests (comment per case) for many cases."
    action_class = ClinCheckRevise
