"""Django tasks (``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2).

Tasks only speed things up; the database stays the source of truth, so a lost or doubled
task changes nothing: every job is idempotent and takes ids.  A retry is enqueued (after
commit) only on a backend that can defer it to ``run_after``; without one, ``align_worker``
finds the operation by its ``next_attempt_at``.

While outbound traffic is paused (switch ``align-outbound-paused``) a retry task sends
nothing: it leaves the operation due and enqueues itself again a few minutes later, so the
work runs once the switch is off (``align_worker`` finds it too).

The workflows announce work by signals sent on commit (``operation_retry_scheduled``,
``callback_stored``); :func:`connect` (called from ``AppConfig.ready``) receives them here.

Any backend works: the immediate one (the default; retries then wait for ``align_worker``),
``django_tasks_db.DatabaseBackend`` with its ``db_worker`` command, or
``align_integration.integrations.celery.CeleryBackend`` on a Celery worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.utils import timezone

from align_integration import signals
from align_integration.conf import get_setting
from align_integration.models import CallbackEvent, RemoteOperation
from align_integration.outbound import outbound_paused
from align_integration.worker import run_operation_job
from align_integration.workflows.callbacks.events import process_event

try:  # Django 6.x
    from django.tasks import task, task_backends
except ImportError:  # Django 5.2: the django-tasks backport (a dependency)
    from django_tasks import signals as _signals  # noqa: F401
    from django_tasks import task, task_backends  # type: ignore[assignment,no-redef]

logger = logging.getLogger("align_integration.worker")

#: While outbound traffic is paused, a retry task looks again this much later.
PAUSED_RECHECK_SECONDS = 300


def backend_alias() -> str:
    return str(get_setting("TASK_BACKEND"))


def task_backend() -> Any:
    """The configured backend instance; raises if the alias is not in ``TASKS``."""
    return task_backends[backend_alias()]


def backend_can_defer() -> bool:
    """True when the configured backend runs a task at its ``run_after``."""
    try:
        backend = task_backend()
    except Exception:  # noqa: BLE001 - misconfigured backend: fall back to align_worker
        return False
    return bool(getattr(backend, "supports_defer", False))


@task()
def retry_operation(operation_id: int) -> bool:
    """Run one due retry of a ``RemoteOperation`` (a no-op when it is not due or done).

    While outbound traffic is paused: nothing is sent, the operation stays due, and the
    task is enqueued again for later.
    """
    if outbound_paused():
        later = timezone.now() + dt.timedelta(seconds=PAUSED_RECHECK_SECONDS)
        enqueue_operation_retry(operation_id, later)
        logger.info("operation=%s task=paused recheck_in=%s", operation_id, PAUSED_RECHECK_SECONDS)
        return False
    return run_operation_job(operation_id)


@task()
def process_callback(event_pk: int) -> bool:
    """Apply one stored callback (deferred processing); a no-op once it is processed."""
    return process_event(event_pk)


def enqueue_callback(event_pk: int) -> Any:
    """Enqueue ``process_callback`` on a real task backend; ``None`` when not enqueued.

    Only a backend that runs tasks later in workers (one that can defer) is used: the
    immediate backend (the default) would apply the event inside the request, which
    deferred processing exists to avoid.  ``align_worker`` applies stored events anyway.
    """
    if not backend_can_defer():
        return None
    try:
        return process_callback.using(backend=backend_alias()).enqueue(event_pk)
    except Exception as error:  # noqa: BLE001 - align_worker still finds it
        logger.warning("callback=%s enqueue=failed error=%s", event_pk, type(error).__name__)
        return None


def enqueue_operation_retry(operation_id: int, run_after: dt.datetime | None) -> Any:
    """Enqueue ``retry_operation`` to run at ``run_after``; ``None`` when it was not enqueued.

    A failure to enqueue is logged and otherwise ignored: ``align_worker`` still finds the
    operation.
    """
    if not backend_can_defer():
        return None
    try:
        return retry_operation.using(backend=backend_alias(), run_after=run_after).enqueue(
            operation_id
        )
    except Exception as error:  # noqa: BLE001 - the worker will still find it
        logger.warning("operation=%s enqueue=failed error=%s", operation_id, type(error).__name__)
        return None


def _on_retry_scheduled(sender: Any, operation: RemoteOperation, **kwargs: Any) -> None:
    enqueue_operation_retry(operation.pk, operation.next_attempt_at)


def _on_callback_stored(sender: Any, event: CallbackEvent, **kwargs: Any) -> None:
    enqueue_callback(event.pk)


def connect() -> None:
    """Receive the workflows' signals (idempotent: receivers have a ``dispatch_uid``)."""
    signals.operation_retry_scheduled.connect(
        _on_retry_scheduled, dispatch_uid="align_integration.tasks.retry"
    )
    signals.callback_stored.connect(
        _on_callback_stored, dispatch_uid="align_integration.tasks.callback"
    )
