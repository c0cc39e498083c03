"""Celery as the engine behind Django's tasks framework, and the worker pass as a Celery task.

Install with ``pip install django-align-integration[celery]``.  Two ways to use it:

1. As the Django tasks backend (retries are then deferred with Celery's ``eta``)::

       TASKS = {"default": {"BACKEND": "align_integration.integrations.celery.CeleryBackend"}}
       CELERY_BROKER_URL = "redis://redis.internal:6379/0"

   and run a worker (this module's Celery app reads ``CELERY_*`` Django settings)::

       DJANGO_SETTINGS_MODULE=proj.settings celery -A align_integration.integrations.celery worker

   A host with its own Celery app names it in ``OPTIONS={"APP": "proj.celery.app"}`` and adds
   ``"align_integration.integrations.celery"`` to that app's ``include``.

2. As a periodic job with celery beat, instead of a separate ``align_worker --loop``::

       CELERY_BEAT_SCHEDULE = {"align-worker-pass": {"task": WORKER_PASS, "schedule": 10.0}}

Every job is idempotent and takes ids, so a message Celery delivers twice (``acks_late``,
a visibility timeout shorter than an ``eta``) changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from celery import Celery, shared_task
from django.utils import timezone
from django.utils.module_loading import import_string

try:  # Django 6.x
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskResult, TaskResultStatus
    from django.tasks.signals import task_enqueued
except ImportError:  # Django 5.2 with the backport
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[assignment]
    from django_tasks.base import (  # type: ignore[assignment]
        Task,
        TaskResult,
        TaskResultStatus,
    )
    from django_tasks.signals import task_enqueued

RUN_TASK = "align_integration.run_django_task"
WORKER_PASS = "align_integration.worker_pass"  # noqa: S105 - a task name
RETRY_OPERATION = "align_integration.retry_operation"

#: The Celery app for hosts without their own; configured from ``CELERY_*`` Django settings.
app = Celery("align_integration")
app.config_from_object("django.conf:settings", namespace="CELERY")


@shared_task(name=RUN_TASK, ignore_result=True, acks_late=True)
def run_django_task(task_path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run the Django task at ``task_path`` (what :class:`CeleryBackend` enqueues)."""
    task = import_string(task_path)
    if not isinstance(task, Task):  # a message naming any other callable is refused
        raise TypeError(f"{task_path} is not a Django task")
    return task.call(*args, **kwargs)


@shared_task(name=RETRY_OPERATION, ignore_result=True, acks_late=True)
def retry_operation(operation_id: int) -> bool:
    """One due retry of a remote operation (the same job as ``align_integration.tasks``)."""
    # Imported when the task runs: Celery may import this module before Django's app
    # registry is ready (worker start-up, autodiscovery), and the worker needs the models.
    from align_integration.worker import run_operation_job

    return run_operation_job(operation_id)


@shared_task(name=WORKER_PASS, ignore_result=True)
def worker_pass(limit: int = 100) -> dict[str, int]:
    """One ``align_worker`` pass: due retries, stored callbacks, iTero work."""
    from align_integration.worker import run_worker_pass

    return dataclasses.asdict(run_worker_pass(limit))


class CeleryBackend(BaseTaskBackend):
    """A Django tasks backend that hands tasks to Celery.

    ``OPTIONS``: ``APP`` (dotted path of the Celery app; default this module's ``app``) and
    ``QUEUE`` (the Celery queue; default Celery's own default queue).
    """

    supports_defer = True
    supports_async_task = False
    supports_get_result = False
    supports_priority = False

    def _celery_app(self) -> Celery:
        path = self.options.get("APP")
        return import_string(path) if path else app

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        result_id = uuid.uuid4().hex
        options: dict[str, Any] = {"task_id": result_id}
        if task.run_after is not None:
            options["eta"] = task.run_after
        if self.options.get("QUEUE"):
            options["queue"] = self.options["QUEUE"]
        self._celery_app().send_task(
            RUN_TASK, args=[task.module_path, list(args), dict(kwargs)], **options
        )
        result = _task_result(
            task=task,
            id=result_id,
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result


def _task_result(**values: Any) -> Any:
    """A ``TaskResult`` from the fields this version of the framework has."""
    names = {field.name for field in dataclasses.fields(TaskResult) if field.init}
    return TaskResult(**{name: value for name, value in values.items() if name in names})
