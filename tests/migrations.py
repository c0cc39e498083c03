"""Running a data migration in a test: the app's models as of an earlier migration, then
forward to the newest state (what ``manage.py migrate`` does on a deployment)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

APP = "align_integration"


@contextmanager
def models_as_of(migration: str) -> Iterator[Any]:
    """The app registry as of ``migration`` (the database migrated back to it); migrates
    forward to the newest state on the way out."""
    target = [(APP, migration)]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes(APP)
    executor.migrate(target)
    try:
        yield executor.loader.project_state(target).apps
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)


def migrate_forward() -> None:
    """Run every migration after the one :func:`models_as_of` went back to."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes(APP))
