"""Running the batch commands in tests."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command


def batch(name: str, *args: str) -> tuple[int, str]:
    """Run batch command ``name`` one row at a time, every row reported: (exit code, output)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, "--concurrency", "1", stdout=out, stderr=err, verbosity=2)
    except CommandError as error:
        return error.returncode, out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()
