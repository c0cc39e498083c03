"""``manage.py align_import_legacy``: copy the old in-repo tool's records into this app.

Reads the legacy tables (``cases_align_orders``, ``cases_case_asset``; names from
``ALIGN_INTEGRATION["LEGACY_IMPORT"]``, overridable here) or CSV exports of them, and imports
sales orders and acceptance screenshots through
:mod:`align_integration.workflows.legacy.importer`.  Every case whose sales orders are
imported is marked as sent, so the app never sends it again.  Treatment plans and statuses
of cases in flight come from ``--plans-csv`` (columns ``case_id``, ``plan_id``,
``version``, ``status``, ``received_at``) or a table (``--plans-table``, or
``LEGACY_IMPORT["PLANS_TABLE"]``): the old integration service kept them, so no table is
read unless one is named.  Safe to run again: nothing is imported twice.  Prints a summary
of imported, skipped and invalid rows with reasons and never a patient's data.  Exits
non-zero when the sources cannot be read, or with ``--strict`` when a row was invalid.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from align_integration.workflows.legacy.importer import LegacyImporter, SectionReport
from align_integration.workflows.legacy.sources import (
    FIELDS,
    KINDS,
    ORDERS,
    PLANS,
    LegacyImportError,
    Source,
    legacy_settings,
    make_source,
)


def _column_overrides(pairs: list[str], kind: str) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or name.strip() not in FIELDS[kind]:
            raise CommandError(
                f"--{kind}-column takes FIELD=COLUMN with FIELD one of {', '.join(FIELDS[kind])}"
            )
        overrides[name.strip()] = column.strip()
    return overrides


class Command(BaseCommand):
    help = (
        "Import the old Align tool's sales orders (cases_align_orders; their cases are marked "
        "as sent), acceptance screenshots (cases_case_asset, kind CCACCEPTSCREEN) and the "
        "treatment plans of cases in flight (--plans-csv / --plans-table) from the database "
        "or from CSV exports. Idempotent; --dry-run writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        described = {
            ORDERS: "the orders table",
            "assets": "the assets table",
            PLANS: "the treatment plans (case_id, plan_id, version, status, received_at)",
        }
        for kind in KINDS:
            parser.add_argument(
                f"--{kind}-csv", metavar="PATH", help=f"CSV export of {described[kind]}"
            )
            parser.add_argument(f"--{kind}-table", metavar="NAME", help=f"legacy {kind} table")
            parser.add_argument(
                f"--{kind}-column",
                action="append",
                default=[],
                metavar="FIELD=COLUMN",
                help=f"column (or CSV header) of a field; fields: {', '.join(FIELDS[kind])}",
            )
        parser.add_argument("--only", choices=list(KINDS), help="import one kind of record only")
        parser.add_argument(
            "--database", default="default", help="database alias holding the legacy tables"
        )
        parser.add_argument("--dry-run", action="store_true", help="report only; write nothing")
        parser.add_argument(
            "--strict", action="store_true", help="exit non-zero if any row was invalid"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sources = self._sources(options)
            importer = LegacyImporter(dry_run=options["dry_run"])
            reports = [importer.run(source) for source in sources]
        except LegacyImportError as error:
            raise CommandError(f"Legacy import stopped: {error}") from None
        importer.finish()
        self._summary(reports, options)
        invalid = sum(len(report.invalid) for report in reports)
        if invalid and options["strict"]:
            raise CommandError(f"{invalid} invalid row(s) (--strict).")

    def _sources(self, options: dict[str, Any]) -> list[Source]:
        """CSV files when any is given (only those), else the legacy tables: orders, assets,
        and plans when a plans table is named.  Plans come last: an acceptance screenshot
        imported before them tells that the provider approved the plan already."""
        csv_given = any(options[f"{kind}_csv"] for kind in KINDS)
        sources = []
        for kind in KINDS:
            if options["only"] not in (None, kind):
                continue
            csv_path = options[f"{kind}_csv"] or ""
            table = options[f"{kind}_table"] or ""
            if csv_path and table:
                raise CommandError(f"Give --{kind}-csv or --{kind}-table, not both.")
            if csv_given and not csv_path:
                continue
            if kind == PLANS and not (csv_path or table or legacy_settings().get("PLANS_TABLE")):
                if options["only"] == PLANS:
                    raise CommandError(
                        "No treatment plans to read: give --plans-csv or --plans-table "
                        "(the old integration service kept them; no table is assumed)."
                    )
                continue
            columns = _column_overrides(options[f"{kind}_column"], kind)
            sources.append(
                make_source(
                    kind,
                    table=table,
                    csv_path=csv_path,
                    columns=columns,
                    database=options["database"],
                )
            )
        if not sources:
            raise CommandError("Nothing to import: --only names a kind without a source.")
        return sources

    def _summary(self, reports: list[SectionReport], options: dict[str, Any]) -> None:
        verbosity = int(options["verbosity"])
        dry_run = options["dry_run"]
        imported_word = "to import" if dry_run else "imported"
        for report in reports:
            if verbosity < 1:
                break
            self.stdout.write(
                f"{report.title} from {report.source}: {report.rows} row(s); "
                f"{report.imported} {imported_word}, {len(report.skipped)} skipped, "
                f"{len(report.invalid)} invalid."
            )
            marked_word = "to mark" if dry_run else "marked"
            if report.kind == ORDERS:
                self.stdout.write(
                    f"  cases {marked_word} as sent (never sent again): {report.marked}"
                )
            elif report.kind == PLANS:
                self.stdout.write(f"  plans awaiting the provider's review: {report.marked}")
            reasons: dict[str, int] = {}
            for note in report.skipped:
                reasons[note.reason] = reasons.get(note.reason, 0) + 1
            for reason, count in sorted(reasons.items()):
                self.stdout.write(f"  skipped {count}: {reason}")
            if verbosity >= 2:
                for note in report.skipped:
                    self.stdout.write(f"  skipped {note}")
        for report in reports:
            for note in report.invalid:
                self.stderr.write(f"Invalid {report.title.lower()} row, {note}")
            for note in report.notes:
                self.stderr.write(f"Check {note}")
        if dry_run and verbosity >= 1:
            self.stdout.write("Dry run: nothing was written.")
