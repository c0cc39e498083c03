"""``manage.py align_send_orders``: send many eligible cases to Align.

What the staff button does, for many cases: create patient, primary order, upload assets,
resuming where an earlier attempt stopped.  Cases not eligible are reported with the
criteria they miss; cases already sent are skipped.

    manage.py align_send_orders --csv cases.csv --dry-run
    manage.py align_send_orders --csv cases.csv --concurrency 8 --report send-report.csv
"""

from __future__ import annotations

from align_integration.management.batch_command import BatchCommand
from align_integration.workflows.batch.actions import SendOrder


class Command(BatchCommand):
    help = "Send many eligible cases to Align (patient, primary order, assets)."
    action_class = SendOrder
