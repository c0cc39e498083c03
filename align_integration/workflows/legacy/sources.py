"""Reading the old in-repo tool's records: its tables in this database, or CSV exports.

A :class:`Source` says where one kind of record (sales orders, acceptance screenshots,
treatment plans of cases in flight) comes from and which column holds each field;
:func:`read_rows` yields its rows with where each came from (``line 5`` of a CSV,
``id 12`` of a table) for the import report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections

from align_integration.conf import get_setting
from align_integration.models import CaseAsset
from align_integration.workflows.csv_files import NotUTF8, csv_lines, read_text

ORDERS, ASSETS, PLANS = "orders", "assets", "plans"
KINDS = (ORDERS, ASSETS, PLANS)
FIELDS = {
    ORDERS: ("id", "case_id", "order_type", "sales_order_number", "patient_id", "created"),
    ASSETS: ("id", "case_id", "kind", "vault_id", "external_key", "date_created", "date_removed"),
    PLANS: ("case_id", "plan_id", "version", "status", "received_at"),
}
#: Columns that must exist in the source (their values are checked row by row).
REQUIRED = {
    ORDERS: ("case_id", "order_type", "sales_order_number", "patient_id", "created"),
    ASSETS: ("id", "case_id", "vault_id", "external_key", "date_created"),
    PLANS: ("case_id", "plan_id", "version", "status", "received_at"),
}
TITLES = {ORDERS: "Sales orders", ASSETS: "Acceptance screenshots", PLANS: "Treatment plans"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Ids printed in the report: numbers and UUIDs only, so a misaligned CSV column holding a
# name or a date of birth is never echoed.
PRINTABLE_ID = re.compile(r"[0-9]{1,20}|[0-9A-Fa-f-]{32,36}")


class LegacyImportError(Exception):
    """The source cannot be read (no such table, column or file); the message says which."""


class InvalidRow(ValueError):
    """A row that cannot be imported; the message is the reason (no values)."""


@dataclass(frozen=True)
class Source:
    """Where one kind of legacy record comes from: a table or a CSV file."""

    kind: str
    columns: dict[str, str]
    table: str = ""
    csv_path: str = ""
    database: str = "default"

    @property
    def label(self) -> str:
        return f"CSV {Path(self.csv_path).name}" if self.csv_path else f"table {self.table}"


def legacy_settings() -> dict[str, Any]:
    return get_setting("LEGACY_IMPORT")


def make_source(
    kind: str,
    *,
    table: str = "",
    csv_path: str = "",
    columns: dict[str, str] | None = None,
    database: str = "default",
) -> Source:
    """A :class:`Source` with the settings' table and columns, overridden by the arguments."""
    config = legacy_settings()
    prefix = kind.upper()
    merged = {**config[f"{prefix}_COLUMNS"], **(columns or {})}
    unknown = sorted(set(merged) - set(FIELDS[kind]))
    if unknown:
        raise LegacyImportError(
            f"unknown {kind} field(s) {', '.join(unknown)}; expected {', '.join(FIELDS[kind])}"
        )
    return Source(
        kind=kind,
        columns={name: str(merged.get(name) or "").strip() for name in FIELDS[kind]},
        table="" if csv_path else (table or config.get(f"{prefix}_TABLE") or ""),
        csv_path=csv_path,
        database=database,
    )


@dataclass(frozen=True)
class LegacyRow:
    location: str  # "line 5" (CSV) or "id 12" / "row 3" (table)
    values: dict[str, Any]

    def text(self, name: str) -> str:
        value = self.values.get(name)
        return "" if value is None else str(value).strip()


# -- reading ------------------------------------------------------------------------------------
def read_rows(source: Source) -> Iterator[LegacyRow]:
    return _csv_rows(source) if source.csv_path else _table_rows(source)


def _column_map(source: Source, present: dict[str, str], where: str) -> dict[str, str]:
    """field -> the source's own column name, for the configured columns that exist."""
    required = set(REQUIRED[source.kind])
    if source.kind == ASSETS and source.table:
        required.add("kind")  # the query selects the screenshots by kind
    mapping: dict[str, str] = {}
    for name, column in source.columns.items():
        if column and column.lower() in present:
            mapping[name] = present[column.lower()]
        elif name in required:
            shown = repr(column) if column else "(none configured)"
            raise LegacyImportError(
                f"{where} has no column {shown} for {name}; columns found: "
                f"{', '.join(sorted(present.values())) or 'none'}"
            )
    return mapping


def _table_rows(source: Source) -> Iterator[LegacyRow]:
    if not IDENTIFIER.fullmatch(source.table):
        raise LegacyImportError(f"{source.table!r} is not a plain table name")
    connection = connections[source.database]
    with connection.cursor() as cursor:
        if source.table not in connection.introspection.table_names(cursor):
            raise LegacyImportError(f"the database has no table {source.table!r}")
        description = connection.introspection.get_table_description(cursor, source.table)
    present = {column.name.lower(): column.name for column in description}
    mapping = _column_map(source, present, f"table {source.table}")
    names = list(mapping)
    quote = connection.ops.quote_name
    selected = ", ".join(quote(mapping[name]) for name in names)
    # Identifiers are checked against the table's own columns and quoted; values are params.
    sql = f"SELECT {selected} FROM {quote(source.table)}"  # noqa: S608
    params: list[Any] = []
    if source.kind == ASSETS:
        sql += f" WHERE {quote(mapping['kind'])} = %s"
        params.append(CaseAsset.CCACCEPTSCREEN)
    sql += f" ORDER BY {quote(mapping.get('id') or mapping['case_id'])}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()  # read everything first: the import writes meanwhile
    for number, values in enumerate(fetched, start=1):
        row = dict(zip(names, values, strict=True))
        legacy_id = _printable(row.get("id"))
        yield LegacyRow(f"id {legacy_id}" if legacy_id else f"row {number}", row)


def _csv_rows(source: Source) -> Iterator[LegacyRow]:
    path = Path(source.csv_path)
    try:  # strict UTF-8: a guessed encoding would import altered order numbers
        text = read_text(path, windows_fallback=False)
    except OSError as error:
        raise LegacyImportError(f"cannot read {path}: {error.strerror}") from None
    except NotUTF8 as error:
        raise LegacyImportError(f"{path.name} is {error}") from None
    mapping: dict[str, int] | None = None
    for row in csv_lines(text):
        if row.problem:
            raise LegacyImportError(f"{path.name} is not valid CSV at line {row.line}")
        if mapping is None:
            present = {name.strip().lower(): name.strip() for name in row.cells}
            columns = _column_map(source, present, f"{path.name} (line {row.line})")
            position = {name.strip().lower(): i for i, name in enumerate(row.cells)}
            mapping = {name: position[col.lower()] for name, col in columns.items()}
            continue
        values = {
            name: row.cells[index] if index < len(row.cells) else None
            for name, index in mapping.items()
        }
        yield LegacyRow(f"line {row.line}", values)
    if mapping is None:
        raise LegacyImportError(f"{path.name} has no header row")


def _printable(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text if PRINTABLE_ID.fullmatch(text) else ""
