"""Django tasks (``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2).

Tasks only speed things up; the database stays the source of truth, so a lost or doubled
task changes nothing: every job is idempotent and takes ids.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

logger = logging.getLogger("align_integration.worker")

try:  # Django 6.x
    from django.tasks import task as _task
    from django.tasks import task_backends
except ImportError:  # pragma: no cover - Django 5.2 with the backport, or none
    try:
        from django_tasks import task as _task
        from django_tasks import task_backends
    except ImportError:
        _task = None
        task_backends = None


def _backend_can_defer() -> bool:
    if task_backends is None:
        return False
    from django.conf import settings

    from align_integration.conf import get_setting

    if not getattr(settings, "TASKS", None):
        return False
    try:
        backend = task_backends[get_setting("TASK_BACKEND")]
    except Exception:  # noqa: BLE001 - misconfigured backend: fall back to align_worker
        return False
    return bool(getattr(backend, "supports_defer", False))


if _task is not None:

    @_task()
    def retry_operation(operation_id: int) -> bool:
        from align_integration.workflows.background import run_operation_job

        return run_operation_job(operation_id)
else:  # pragma: no cover
    retry_operation = None


def enqueue_operation_retry(operation_id: int, run_after: dt.datetime | None) -> Any:
    if retry_operation is None or not _backend_can_defer():
        return None
    from align_integration.conf import get_setting

    try:
        return retry_operation.using(
            backend=get_setting("TASK_BACKEND"), run_after=run_after
        ).enqueue(operation_id)
    except Exception as error:  # noqa: BLE001 - the worker will still find it
        logger.warning("operation=%s enqueue=failed error=%s", operation_id, type(error).__name__)
        return None
