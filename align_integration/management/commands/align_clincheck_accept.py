"""``manage.py align_clincheck_accept``: ClinCheck accept for many cases.

Replaces the old "ClinCheck Accept" ad-hoc script.  Each case is accepted with its newest
acceptance screenshot, once: a re-run skips the cases already accepted.

    manage.py align_clincheck_accept --csv accept.csv --report accept-report.csv
    manage.py align_clincheck_accept --case 3f1c… --case 9a7e… --dry-run
"""

from __future__ import annotations

from align_integration.management.batch_command import BatchCommand
from align_integration.workflows.batch.actions import ClinCheckAccept


class Command(BatchCommand):
    help = "ClinCheck accept (with the newest acceptance screenshot) for many cases."
    action_class = ClinCheckAccept
