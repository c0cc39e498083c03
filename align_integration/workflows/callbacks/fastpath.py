"""The most frequent callback in one statement, on PostgreSQL: a sales order for a case the
app sent.

With the stock case adapter, "the case of this ``caseId``" is the ``AlignCase`` the app
sent under it.  Then finding the case, storing the event (or finding it stored: a
redelivery) and recording the sales order (unless the case has it under this type) is one
statement with data-modifying CTEs, atomic by itself and one round trip:

- the sales order is inserted only if the event row was inserted now, so a redelivery,
  also one arriving at the same moment (it waits for the first insert, then conflicts),
  changes nothing;
- when no ``AlignCase`` answers to the ``caseId``, nothing is written and the caller takes
  the general path (the adapter's other rules, then ``unmatched``).

The general path (``events.ingest``) has the same outcome on every database; this is only
the fast way to it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.db import connections, router
from django.utils import timezone

from align_integration.adapters import CaseAdapter, get_adapter
from align_integration.models import AlignCase, AlignOrder, CallbackEvent
from align_integration.workflows.callbacks.parsing import SALES_ORDER, ParsedEvent

EVENT_COLUMNS = (
    "webhook_id",
    "event_type",
    "case_reference",
    "body",
    "headers",
    "state",
    "error",
    "attempts",
    "received_at",
    "processed_at",
)
ORDER_COLUMNS = (
    "case",
    "order_type",
    "sales_order_number",
    "patient_id",
    "created_at",
    "received_at",
    "source",
)


class FastOutcome(NamedTuple):
    """``case_pk`` of the case found; the event row's id (``None``: a redelivery); the new
    sales order's id (``None``: the case had it)."""

    case_pk: Any
    event_pk: int | None
    order_pk: int | None


def applies(parsed: ParsedEvent) -> bool:
    """The fast path fits: a sales order, PostgreSQL, the stock case lookup."""
    if parsed.event_type != SALES_ORDER:
        return False
    if connections[router.db_for_write(CallbackEvent)].vendor != "postgresql":
        return False
    lookup = type(get_adapter()).case_for_reference
    return lookup is CaseAdapter.case_for_reference


def _column(model: type[Any], name: str, quote: Any) -> str:
    """The quoted column of a field (``"pk"``: the primary key's)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return str(quote(str(field.column)))


def _columns(model: type[Any], names: tuple[str, ...], quote: Any) -> str:
    return ", ".join(_column(model, name, quote) for name in names)


def store_sales_order(
    webhook_id: str, parsed: ParsedEvent, body: str, headers: dict[str, str]
) -> FastOutcome | None:
    """Find the case, store the event as processed and the sales order, in one statement.

    ``None`` when no ``AlignCase`` answers to the ``caseId`` (nothing written).
    """
    alias = router.db_for_write(CallbackEvent)
    connection = connections[alias]
    quote = connection.ops.quote_name
    now = timezone.now()
    data = parsed.data
    headers_field = CallbackEvent._meta.get_field("headers")
    event_values = [
        webhook_id,
        parsed.event_type,
        parsed.case_id,
        body,
        headers_field.get_db_prep_save(headers, connection),
        CallbackEvent.PROCESSED,
        "",
        1,
        now,
        now,
    ]
    order_values = [
        data["orderType"],
        data["salesOrderNumber"],
        data["patientId"],
        data["createdAt"],
        now,
        "callback",
    ]
    state_table = quote(AlignCase._meta.db_table)
    state_case = _column(AlignCase, "case", quote)
    state_ref = _column(AlignCase, "align_case_id", quote)
    state_pk = _column(AlignCase, "pk", quote)
    event_table = quote(CallbackEvent._meta.db_table)
    order_table = quote(AlignOrder._meta.db_table)
    event_pk = _column(CallbackEvent, "pk", quote)
    order_pk = _column(AlignOrder, "pk", quote)
    order_key = _columns(AlignOrder, ("case", "order_type", "sales_order_number"), quote)
    # Identifiers come from the models' _meta, quoted; every value is a parameter.
    sql = f"""
        WITH target AS (
            SELECT {state_case} AS case_pk FROM {state_table}
            WHERE {state_ref} = %s ORDER BY {state_pk} LIMIT 1
        ), receipt AS (
            INSERT INTO {event_table} ({_columns(CallbackEvent, EVENT_COLUMNS, quote)})
            SELECT {", ".join(["%s"] * len(EVENT_COLUMNS))} FROM target
            ON CONFLICT ({quote("webhook_id")}) DO NOTHING
            RETURNING {event_pk}
        ), sales_order AS (
            INSERT INTO {order_table} ({_columns(AlignOrder, ORDER_COLUMNS, quote)})
            SELECT target.case_pk, {", ".join(["%s"] * (len(ORDER_COLUMNS) - 1))}
            FROM target, receipt
            ON CONFLICT ({order_key}) DO NOTHING
            RETURNING {order_pk}
        )
        SELECT (SELECT case_pk FROM target), (SELECT {event_pk} FROM receipt),
               (SELECT {order_pk} FROM sales_order)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [parsed.case_id, *event_values, *order_values])
        case_pk, new_event, new_order = cursor.fetchone()
    if case_pk is None:
        return None
    return FastOutcome(case_pk, new_event, new_order)
