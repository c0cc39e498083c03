"""Batch actions over many cases, the engine behind the ``align_*`` batch commands:
``actions`` (what each command does to one case), ``runner`` (many rows, concurrently)
and ``rows`` (reading the input CSV, writing the report)."""
