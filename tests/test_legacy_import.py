"""``align_import_legacy``: the old tool's tables (or CSV exports of them) into the app.

The legacy tables are created with raw SQL under the seeds' names, in the test database
(SQLite, or PostgreSQL with ``DATABASE_URL``); DDL is rolled back with the test.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from align_integration.cases import align_patient_id, align_sales_order_number
from align_integration.models import AlignOrder, CaseAsset, CaseEvent
from align_integration.workflows.clincheck.review import latest_acceptance_screenshot
from align_integration.workflows.legacy.importer import parse_moment

UTC = dt.UTC
T1 = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
T2 = dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)
T3 = dt.datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
UNKNOWN_CASE = 987654

ORDERS_DDL = """CREATE TABLE cases_align_orders (
    id integer PRIMARY KEY,
    case_id integer NOT NULL,
    order_type varchar(16),
    sales_order_number varchar(64),
    pid varchar(64),
    date_created timestamp with time zone
)"""
ASSETS_DDL = """CREATE TABLE cases_case_asset (
    id integer PRIMARY KEY,
    case_id integer NOT NULL,
    kind varchar(32),
    vault_id varchar(64),
    external_key varchar(255),
    date_created timestamp with time zone,
    date_removed timestamp with time zone
)"""


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("align_import_legacy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def patient_values(*cases: Any) -> list[str]:
    values = []
    for case in cases:
        patient = case.patient
        values += [
            patient.first_name,
            patient.last_name,
            patient.medical_record_number,
            patient.email,
            patient.phone,
            patient.date_of_birth.isoformat(),
        ]
    return values


@pytest.fixture
def legacy_tables(db: Any) -> Callable[..., None]:
    """Creates the two legacy tables; returns ``insert(table, rows)``."""
    with connection.cursor() as cursor:
        for name, ddl in (("cases_align_orders", ORDERS_DDL), ("cases_case_asset", ASSETS_DDL)):
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(ddl)

    def insert(table: str, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join(["%s"] * len(rows[0]))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608

    return insert


@pytest.fixture
def legacy_data(make_case: Callable[..., Any], legacy_tables: Callable[..., None]) -> Any:
    first, second = make_case(), make_case()
    legacy_tables(
        "cases_align_orders",
        [
            (1, first.pk, "primary", "SO-1001", "PID-77", T1),
            (2, first.pk, "primary", "SO-1002", "PID-78", T2),  # newer: the one that counts
            (3, first.pk, "secondary", "SO-2001", "PID-78", T2),
            (4, second.pk, "primary", "SO-3001", "PID-90", T3),
            (5, UNKNOWN_CASE, "primary", "SO-4001", "PID-91", T3),
            (6, second.pk, "primary", None, "PID-90", T3),
            (7, second.pk, "tertiary", "SO-3002", "PID-90", None),
        ],
    )
    legacy_tables(
        "cases_case_asset",
        [
            (10, first.pk, "CCACCEPTSCREEN", "vault-a", "key/a.jpg", T1, T2),  # removed
            (11, first.pk, "CCACCEPTSCREEN", "vault-b", "key/b.jpg", T2, None),
            (12, first.pk, "STL", "vault-c", "key/c.stl", T2, None),  # not a screenshot
            (13, UNKNOWN_CASE, "CCACCEPTSCREEN", "vault-d", "key/d.jpg", T3, None),
            (14, second.pk, "CCACCEPTSCREEN", "", "", T3, None),
        ],
    )
    return first, second


def test_imports_orders_and_screenshots_from_the_legacy_tables(legacy_data: Any) -> None:
    first, second = legacy_data
    out, err = run()

    orders = AlignOrder.objects.filter(source="legacy")
    assert sorted(orders.values_list("sales_order_number", flat=True)) == [
        "SO-1001",
        "SO-1002",
        "SO-2001",
        "SO-3001",
    ]
    so_1002 = orders.get(sales_order_number="SO-1002")
    assert (so_1002.case, so_1002.order_type, so_1002.patient_id) == (first, "primary", "PID-78")
    assert so_1002.created_at == T2
    # The case helpers (the old Case properties) read the newest record of the type.
    assert align_sales_order_number(first) == "SO-1002"
    assert first.align_sales_order_number == "SO-1002"
    assert align_patient_id(first) == "PID-78"
    assert align_sales_order_number(first, "secondary") == "SO-2001"
    assert second.align_sales_order_number == "SO-3001"

    assets = CaseAsset.objects.filter(source="legacy").order_by("source_ref")
    assert [(a.source_ref, a.case_id, a.vault_id, a.external_key) for a in assets] == [
        ("legacy:10", first.pk, "vault-a", "key/a.jpg"),
        ("legacy:11", first.pk, "vault-b", "key/b.jpg"),
    ]
    removed, current = assets
    assert (removed.date_created, removed.date_removed) == (T1, T2)
    assert (current.date_created, current.date_removed) == (T2, None)
    assert all(a.kind == CaseAsset.CCACCEPTSCREEN and not a.file for a in assets)
    # A ClinCheck accept for an imported case uses the old screenshot's vault ids.
    assert latest_acceptance_screenshot(first) == current

    assert "Sales orders from table cases_align_orders: 7 row(s); 4 imported" in out
    assert "3 invalid" in out
    assert "Acceptance screenshots from table cases_case_asset: 4 row(s); 2 imported" in out
    assert f"id 5, case {UNKNOWN_CASE}: unknown case" in err
    assert "id 6, case" in err and "missing sales order number" in err
    assert "unknown order type; missing created date" in err
    assert f"id 13, case {UNKNOWN_CASE}: unknown case" in err
    assert "id 14" in err and "missing vault id and external key" in err

    event = CaseEvent.objects.get(case=first, action="legacy_import")
    assert event.message == (
        "Imported from the old Align tool: 3 sales order(s), 2 acceptance screenshot(s)."
    )


def test_a_rerun_imports_nothing_twice(legacy_data: Any) -> None:
    run()
    counts = (AlignOrder.objects.count(), CaseAsset.objects.count(), CaseEvent.objects.count())
    out, _ = run()
    assert counts == (
        AlignOrder.objects.count(),
        CaseAsset.objects.count(),
        CaseEvent.objects.count(),
    )
    assert "7 row(s); 0 imported, 4 skipped, 3 invalid" in out
    assert "skipped 4: already imported" in out
    assert "4 row(s); 0 imported, 2 skipped, 2 invalid" in out


def test_dry_run_writes_nothing(legacy_data: Any) -> None:
    out, err = run("--dry-run")
    assert not AlignOrder.objects.exists()
    assert not CaseAsset.objects.filter(source="legacy").exists()
    assert not CaseEvent.objects.filter(action="legacy_import").exists()
    assert "7 row(s); 4 to import, 0 skipped, 3 invalid" in out
    assert "Dry run: nothing was written." in out
    assert "unknown case" in err


def test_strict_exits_non_zero_when_a_row_is_invalid(legacy_data: Any) -> None:
    with pytest.raises(CommandError, match="5 invalid row"):
        run("--strict")
    # The valid rows were still imported; the run can be repeated after fixing the rest.
    assert AlignOrder.objects.filter(source="legacy").count() == 4


def test_an_order_already_received_by_callback_is_skipped(legacy_data: Any) -> None:
    first, _ = legacy_data
    AlignOrder.objects.create(
        case=first, order_type="primary", sales_order_number="SO-1001", patient_id="PID-77"
    )
    out, _ = run("--only", "orders")
    assert "3 imported" in out
    assert "skipped 1: already present (from callback)" in out


def test_the_output_holds_no_patient_data(legacy_data: Any) -> None:
    out, err = run("-v", "2")
    output = out + err
    for value in [*patient_values(*legacy_data), "SO-1001", "PID-77", "vault-a", "key/a.jpg"]:
        assert value not in output


def test_table_and_column_names_can_be_overridden(make_case: Any, db: Any) -> None:
    case = make_case()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS old_orders")
        cursor.execute(
            "CREATE TABLE old_orders (id integer PRIMARY KEY, case_id integer, "
            "order_type varchar(16), so_number varchar(64), patient varchar(64), "
            "date_order timestamp with time zone)"
        )
        cursor.execute(
            "INSERT INTO old_orders VALUES (%s, %s, %s, %s, %s, %s)",
            [1, case.pk, "PRIMARY", "SO-9", "PID-9", T1],
        )
    run(
        "--only=orders",
        "--orders-table=old_orders",
        "--orders-column=sales_order_number=so_number",
        "--orders-column=patient_id=patient",
        "--orders-column=created=date_order",
    )
    assert case.align_sales_order_number == "SO-9"


def test_settings_name_the_tables(make_case: Any, legacy_tables: Any, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "LEGACY_IMPORT": {"ORDERS_TABLE": "no_such_table"},
    }
    with pytest.raises(CommandError, match="no table 'no_such_table'"):
        run("--only", "orders")


def test_a_missing_column_is_named(legacy_tables: Any) -> None:
    with pytest.raises(CommandError, match="no column 'created_at' for created"):
        run("--only", "orders", "--orders-column", "created=created_at")
    with pytest.raises(CommandError, match="FIELD=COLUMN"):
        run("--orders-column", "colour=blue")


# -- CSV exports ---------------------------------------------------------------------------------
def write_csv(path: Path, lines: list[str]) -> str:
    """UTF-8 with a BOM and CRLF line ends, as spreadsheet tools write them."""
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return str(path)


def test_imports_csv_exports(make_case: Any, tmp_path: Path) -> None:
    case = make_case(first_name="Zebulon", last_name="Quartermaine", mrn="MRN-SECRET-1")
    orders_csv = write_csv(
        tmp_path / "orders.csv",
        [
            "id,Patient Name,case_id,order_type,sales_order_number,pid,date_created,mrn",
            f"1,Zebulon Quartermaine,{case.pk},primary,SO-1,PID-1,2021-03-04 05:06,MRN-SECRET-1",
            "",
            f"2,Zebulon Quartermaine,{case.pk},secondary,SO-2,PID-1,31/12/2020,MRN-SECRET-1",
            f"3,Zebulon Quartermaine,{case.pk},primary,,PID-1,2021-03-04,MRN-SECRET-1",
            f"4,Zebulon Quartermaine,{UNKNOWN_CASE},primary,SO-4,PID-1,2021-03-04,MRN-SECRET-1",
            f'5,"Quartermaine, Zebulon",{case.uuid},secondary,SO-5,PID-1,'
            "2021-06-07T08:09:10+02:00,MRN-SECRET-1",
        ],
    )
    assets_csv = write_csv(
        tmp_path / "assets.csv",
        [
            "id,case_id,kind,vault_id,external_key,date_created,date_removed",
            f"20,{case.pk},CCACCEPTSCREEN,vault-20,key/20.jpg,2021-04-05 06:07:08,",
            f"21,{case.pk},STL,vault-21,key/21.stl,2021-04-05 06:07:08,",
            f"22,{case.pk},CCACCEPTSCREEN,vault-22,key/22.jpg,2021-04-05,not a date",
        ],
    )
    out, err = run("--orders-csv", orders_csv, "--assets-csv", assets_csv)

    orders = {o.sales_order_number: o for o in AlignOrder.objects.filter(case=case)}
    assert sorted(orders) == ["SO-1", "SO-5"]
    assert orders["SO-1"].created_at == dt.datetime(2021, 3, 4, 5, 6, tzinfo=UTC)
    assert orders["SO-5"].created_at == dt.datetime(2021, 6, 7, 6, 9, 10, tzinfo=UTC)
    asset = CaseAsset.objects.get(source_ref="legacy:20")
    assert (asset.case, asset.vault_id, asset.source) == (case, "vault-20", "legacy")

    assert "Sales orders from CSV orders.csv: 5 row(s); 2 imported, 0 skipped, 3 invalid." in out
    assert "line 4, case" in err and "created date is not a date" in err
    assert "line 5, case" in err and "missing sales order number" in err
    assert f"line 6, case {UNKNOWN_CASE}: unknown case" in err
    assert "3 row(s); 1 imported, 1 skipped, 1 invalid." in out
    assert "skipped 1: kind is not CCACCEPTSCREEN" in out
    assert "line 4, case" in err and "removed date is not a date" in err
    output = out + err
    for value in [*patient_values(case), "Zebulon", "SO-1", "PID-1", "vault-20"]:
        assert value not in output

    again, _ = run("--orders-csv", orders_csv, "--assets-csv", assets_csv)
    assert "5 row(s); 0 imported, 2 skipped, 3 invalid." in again
    assert AlignOrder.objects.filter(case=case).count() == 2
    assert CaseAsset.objects.filter(source="legacy").count() == 1


def test_csv_only_reads_the_given_file(make_case: Any, tmp_path: Path) -> None:
    case = make_case()
    orders_csv = write_csv(
        tmp_path / "orders.csv",
        [
            "case_id,order_type,sales_order_number,pid,date_created",
            f"{case.pk},primary,S1,P1,2021-01-01",
        ],
    )
    out, _ = run("--orders-csv", orders_csv)  # no legacy tables exist: none are read
    assert "Acceptance screenshots" not in out
    assert case.align_sales_order_number == "S1"


def test_csv_header_problems_stop_the_run(db: Any, tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "orders.csv", ["case_id,order_type,pid,date_created"])
    with pytest.raises(CommandError, match="no column 'sales_order_number'"):
        run("--orders-csv", bad)
    with pytest.raises(CommandError, match="cannot read"):
        run("--orders-csv", str(tmp_path / "missing.csv"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        b"case_id,order_type,sales_order_number,pid,date_created\n1,primary,S\xe9,P,x\n"
    )
    with pytest.raises(CommandError, match="latin.csv is not UTF-8 at line 2"):
        run("--orders-csv", str(latin))
    assert not AlignOrder.objects.exists()  # nothing half-imported before the bad byte
    huge = write_csv(
        tmp_path / "huge.csv",
        ["case_id,order_type,sales_order_number,pid,date_created", "1," + "x" * 200_000],
    )
    with pytest.raises(CommandError, match="huge.csv is not valid CSV at line 2"):
        run("--orders-csv", huge)


def test_a_semicolon_export_is_read(make_case: Any, tmp_path: Path) -> None:
    """A spreadsheet in many locales saves "CSV" with ``;`` between the cells."""
    case = make_case()
    orders_csv = write_csv(
        tmp_path / "orders.csv",
        [
            "case_id;order_type;sales_order_number;pid;date_created",
            f"{case.pk};primary;S1;P1;2021-01-01",
        ],
    )
    out, _ = run("--orders-csv", orders_csv)
    assert "1 row(s); 1 imported" in out
    assert case.align_sales_order_number == "S1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-04", dt.datetime(2021, 3, 4, tzinfo=UTC)),
        ("2021-03-04 05:06", dt.datetime(2021, 3, 4, 5, 6, tzinfo=UTC)),
        ("2021-03-04T05:06:07Z", dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2021-03-04 05:06:07.5-05:00", dt.datetime(2021, 3, 4, 10, 6, 7, 500000, tzinfo=UTC)),
        ("", None),
    ],
)
def test_dates(text: str, expected: dt.datetime | None) -> None:
    assert parse_moment(text, "date", UTC) == expected


@pytest.mark.parametrize("text", ["31/12/2020", "2021-13-01", "yesterday"])
def test_bad_dates(text: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_moment(text, "date", UTC)
