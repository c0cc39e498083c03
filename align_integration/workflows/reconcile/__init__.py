"""Drift reconciliation with Align (``manage.py align_reconcile``): ``drift`` compares one
case's ids with Align's find calls, ``run`` selects the cases, runs the check on the batch
runner and adopts Align's ids where exactly one candidate exists (``--fix``)."""
