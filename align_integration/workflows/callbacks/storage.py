"""Storing a row unless it is there already, in one statement.

``insert_unless_exists`` is how a callback is stored and told apart from a redelivery, and
how a sales order is recorded once: ``INSERT … ON CONFLICT (key) DO NOTHING RETURNING id``
on PostgreSQL and SQLite (one round trip, no savepoint, a concurrent duplicate waits for
the first insert and then finds it).  Django's ``bulk_create(ignore_conflicts=True)``
emits the same INSERT but does not return the id, which is what tells "stored now" from
"stored before".  Databases without ``ON CONFLICT (…) … RETURNING`` (MySQL) take the
portable way: an INSERT in a savepoint, ``IntegrityError`` meaning "already there".
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper


def _one_statement(connection: BaseDatabaseWrapper) -> bool:
    """Whether this database has ``INSERT … ON CONFLICT (…) DO NOTHING RETURNING``."""
    features = connection.features
    return bool(
        features.supports_update_conflicts_with_target and features.can_return_columns_from_insert
    )


def insert_unless_exists(instance: models.Model, conflict_fields: Sequence[str]) -> bool:
    """INSERT ``instance`` unless a row with the same ``conflict_fields`` exists.

    True when it was inserted now (``instance.pk`` is then set); False when the row was
    there before (``instance`` is left unsaved).  ``conflict_fields`` must be covered by a
    unique constraint.
    """
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    if not _one_statement(connection):
        try:
            with transaction.atomic(using=alias):  # a conflict leaves the caller's transaction
                instance.save(force_insert=True, using=alias)
        except IntegrityError:
            return False
        return True
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.local_concrete_fields if f is not pk or instance.pk is not None]
    quote = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    columns = ", ".join(quote(str(f.column)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    conflict = ", ".join(quote(str(meta.get_field(name).column)) for name in conflict_fields)  # type: ignore[union-attr]
    # Identifiers come from the model's _meta, quoted; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(str(meta.db_table))} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(str(pk.column))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = alias
    return True
