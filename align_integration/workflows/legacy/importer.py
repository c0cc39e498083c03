"""Importing the old in-repo tool's records: sales orders, acceptance screenshots, and the
treatment plans of cases in flight.

The old tool (``tools.align``) kept Align's sales order records in ``cases_align_orders`` and
the providers' acceptance screenshots in ``cases_case_asset`` (kind ``CCACCEPTSCREEN``, the
file itself in the old vault).  This flow copies them into :class:`AlignOrder`
(``source="legacy"``) and :class:`CaseAsset` (``source="legacy"``,
``source_ref="legacy:<old id>"``, no file: ``vault_id`` and ``external_key`` are what a
ClinCheck accept sends), reading the legacy tables in the same database or CSV exports of them.
Every case whose sales orders are imported is marked as sent (:mod:`.marking`), so the app
never sends it again; treatment plans and statuses (:mod:`.plans`) let a case waiting for
review at cutover be approved or revised on day one.

Idempotent: an order that is already there (the ``AlignOrder`` unique constraint) and an asset
whose ``source_ref`` exists are skipped, so a re-run imports nothing twice.  Every row ends up
imported, skipped or invalid, with a reason.  Reasons name row ids, case ids and what was
wrong, never a value that could be patient data.  ``manage.py align_import_legacy`` is the
entry point; sales order signals are not sent for imported rows (they are history).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from align_integration.adapters import CaseAdapter, get_adapter
from align_integration.models import AlignOrder, CaseAsset, CaseEvent
from align_integration.workflows.legacy.marking import mark_sent
from align_integration.workflows.legacy.plans import check_plan_row, import_plan
from align_integration.workflows.legacy.sources import (
    ASSETS,
    ORDERS,
    PLANS,
    TITLES,
    InvalidRow,
    LegacyImportError,
    LegacyRow,
    Source,
    _printable,
    legacy_settings,
    read_rows,
)
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.legacy_import")

LEGACY = "legacy"


# -- checking values ----------------------------------------------------------------------------
def _naive_zone() -> dt.tzinfo:
    name = str(legacy_settings().get("TIME_ZONE") or settings.TIME_ZONE or "UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LegacyImportError(f"LEGACY_IMPORT['TIME_ZONE'] {name!r} is no time zone") from None


def parse_moment(value: Any, label: str, zone: dt.tzinfo) -> dt.datetime | None:
    """A datetime from a database value or ISO 8601 text; ``None`` when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time.min)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = parse_datetime(text)
            if moment is None and (day := parse_date(text)) is not None:
                moment = dt.datetime.combine(day, dt.time.min)
        except ValueError:
            moment = None
    if moment is None:
        raise InvalidRow(f"{label} is not a date (expected ISO 8601, YYYY-MM-DD[ HH:MM[:SS]])")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, zone)
    if not settings.USE_TZ:
        moment = timezone.make_naive(moment)
    return moment


def _bounded(row: LegacyRow, name: str, label: str, limit: int, problems: list[str]) -> str:
    text = row.text(name)
    if len(text) > limit:
        problems.append(f"{label} is longer than {limit} characters")
    return text


@dataclass
class RowNote:
    location: str
    case_ref: str
    reason: str

    def __str__(self) -> str:
        where = [self.location] if self.location else []
        where += [f"case {self.case_ref}"] if self.case_ref else []
        return f"{', '.join(where)}: {self.reason}"


@dataclass
class SectionReport:
    """What happened to the rows of one source."""

    kind: str
    source: str
    rows: int = 0
    imported: int = 0
    skipped: list[RowNote] = field(default_factory=list)
    invalid: list[RowNote] = field(default_factory=list)
    #: Cases marked as sent (sales orders), or plans that now await the provider's review.
    marked: int = 0
    #: Things to check that are not row errors (a case not marked as sent, and why).
    notes: list[RowNote] = field(default_factory=list)

    @property
    def title(self) -> str:
        return TITLES[self.kind]


# -- importing ----------------------------------------------------------------------------------
class LegacyImporter:
    """Imports rows of either kind; :meth:`finish` writes one timeline entry per case."""

    def __init__(self, *, dry_run: bool = False, adapter: CaseAdapter | None = None) -> None:
        self.dry_run = dry_run
        self.adapter = adapter or get_adapter()
        self.zone = _naive_zone()
        self.order_types = {
            str(key).strip().lower(): value
            for key, value in legacy_settings()["ORDER_TYPES"].items()
        }
        self._cases: dict[str, Any] = {}
        self._seen: set[tuple[Any, ...]] = set()
        self._imported: dict[Any, tuple[Any, dict[str, int]]] = {}
        self._order_cases: dict[Any, tuple[Any, str]] = {}
        self._report: SectionReport | None = None

    def run(self, source: Source) -> SectionReport:
        report = self._report = SectionReport(source.kind, source.label)
        handle = {ORDERS: self._order, ASSETS: self._asset, PLANS: self._plan}[source.kind]
        for row in read_rows(source):
            report.rows += 1
            case_ref = _printable(row.values.get("case_id"))
            try:
                skipped = handle(row)
            except InvalidRow as problem:
                report.invalid.append(RowNote(row.location, case_ref, str(problem)))
            else:
                if skipped:
                    report.skipped.append(RowNote(row.location, case_ref, skipped))
                else:
                    report.imported += 1
        if source.kind == ORDERS:
            self._mark_sent(report)
        logger.info(
            "legacy_import kind=%s rows=%d imported=%d skipped=%d invalid=%d dry_run=%s",
            source.kind,
            report.rows,
            report.imported,
            len(report.skipped),
            len(report.invalid),
            self.dry_run,
        )
        return report

    def _mark_sent(self, report: SectionReport) -> None:
        """Mark every case of a valid sales order row as sent (the old tool sent it)."""
        for case, legacy_case_id in self._order_cases.values():
            marking = mark_sent(case, legacy_case_id, self.adapter, dry_run=self.dry_run)
            report.marked += int(marking.marked)
            if marking.note:
                report.notes.append(RowNote("", _printable(legacy_case_id), marking.note))
        self._order_cases.clear()

    def finish(self) -> None:
        """One ``legacy_import`` timeline entry for every case that received records."""
        if self.dry_run:
            return
        for case, counts in self._imported.values():
            parts = [f"{counts['orders']} sales order(s)"] if counts["orders"] else []
            parts += [f"{counts['assets']} acceptance screenshot(s)"] if counts["assets"] else []
            parts += [f"{counts['plans']} treatment plan(s)"] if counts["plans"] else []
            record(
                case,
                "legacy_import",
                CaseEvent.INFO,
                f"Imported from the old Align tool: {', '.join(parts)}.",
            )
        self._imported.clear()

    # -- one row ------------------------------------------------------------------------------
    def _case(self, case_ref: str) -> Any:
        if case_ref not in self._cases:
            self._cases[case_ref] = self._find_case(case_ref)
        case = self._cases[case_ref]
        if case is None:
            raise InvalidRow("unknown case: no case has that reference")
        return case

    def _find_case(self, case_ref: str) -> Any:
        for lookup in (self.adapter.case_for_reference, self.adapter.get_case):
            try:
                with transaction.atomic():  # a failed query must not spoil the run
                    return lookup(case_ref)
            except (LookupError, DatabaseError):
                continue
        return None

    def _counted(self, case: Any, **counts: int) -> None:
        _, had = self._imported.setdefault(case.pk, (case, {"orders": 0, "assets": 0, "plans": 0}))
        for name, count in counts.items():
            had[name] += count

    def _order(self, row: LegacyRow) -> str:
        problems: list[str] = []
        case_ref = row.text("case_id")
        if not case_ref:
            problems.append("missing case id")
        raw_type = row.text("order_type")
        order_type = self.order_types.get(raw_type.lower())
        if order_type not in (AlignOrder.PRIMARY, AlignOrder.SECONDARY):
            problems.append("missing order type" if not raw_type else "unknown order type")
        number = _bounded(row, "sales_order_number", "sales order number", 64, problems)
        if not number:
            problems.append("missing sales order number")
        patient_id = _bounded(row, "patient_id", "patient id", 64, problems)
        created = self._moment(row, "created", "created date", problems, required=True)
        if problems or order_type is None or created is None:
            raise InvalidRow("; ".join(problems))
        case = self._case(case_ref)
        self._order_cases.setdefault(case.pk, (case, case_ref))
        key = (ORDERS, case.pk, order_type, number)
        if key in self._seen:
            return "duplicate of an earlier row"
        self._seen.add(key)
        existing = AlignOrder.objects.filter(
            case=case, order_type=order_type, sales_order_number=number
        ).first()
        if existing is not None:
            return _already(existing.source)
        if not self.dry_run:
            try:
                with transaction.atomic():
                    AlignOrder.objects.create(
                        case=case,
                        order_type=order_type,
                        sales_order_number=number,
                        patient_id=patient_id,
                        created_at=created,
                        source=LEGACY,
                    )
            except IntegrityError:  # stored meanwhile by a callback
                return _already("callback")
        self._counted(case, orders=1)
        return ""

    def _asset(self, row: LegacyRow) -> str:
        problems: list[str] = []
        legacy_id = _bounded(row, "id", "id", 200, problems)
        if not legacy_id:
            problems.append("missing id")
        case_ref = row.text("case_id")
        if not case_ref:
            problems.append("missing case id")
        kind = row.text("kind")
        if "kind" in row.values:  # a CSV export may leave the column out
            if not kind:
                problems.append("missing kind")
            elif kind.upper() != CaseAsset.CCACCEPTSCREEN:
                return f"kind is not {CaseAsset.CCACCEPTSCREEN}"
        vault_id = _bounded(row, "vault_id", "vault id", 64, problems)
        external_key = _bounded(row, "external_key", "external key", 255, problems)
        if not (vault_id or external_key):
            problems.append("missing vault id and external key")
        created = self._moment(row, "date_created", "created date", problems, required=True)
        removed = self._moment(row, "date_removed", "removed date", problems, required=False)
        if problems:
            raise InvalidRow("; ".join(problems))
        case = self._case(case_ref)
        source_ref = f"{LEGACY}:{legacy_id}"
        if (ASSETS, source_ref) in self._seen:
            return "duplicate of an earlier row"
        self._seen.add((ASSETS, source_ref))
        if CaseAsset.objects.filter(source_ref=source_ref).exists():
            return "already imported"
        if not self.dry_run:
            try:
                with transaction.atomic():
                    asset = CaseAsset.objects.create(
                        case=case,
                        kind=CaseAsset.CCACCEPTSCREEN,
                        vault_id=vault_id,
                        external_key=external_key,
                        source=LEGACY,
                        source_ref=source_ref,
                        date_removed=removed,
                    )
                    # date_created is auto_now_add: keep the old date with an update.
                    CaseAsset.objects.filter(pk=asset.pk).update(date_created=created)
            except IntegrityError:
                return "already imported"
        self._counted(case, assets=1)
        return ""

    def _plan(self, row: LegacyRow) -> str:
        problems: list[str] = []
        case_ref = row.text("case_id")
        if not case_ref:
            problems.append("missing case id")
        plan_id, version, status = check_plan_row(row, problems)
        received = self._moment(row, "received_at", "received date", problems, required=True)
        if problems or version is None or received is None:
            raise InvalidRow("; ".join(problems))
        case = self._case(case_ref)
        skipped, awaiting = import_plan(
            case,
            plan_id=plan_id,
            version=version,
            status=status,
            received_at=received,
            dry_run=self.dry_run,
        )
        if skipped:
            return skipped
        if awaiting and self._report is not None:
            self._report.marked += 1
        self._counted(case, plans=1)
        return ""

    def _moment(
        self, row: LegacyRow, name: str, label: str, problems: list[str], *, required: bool
    ) -> dt.datetime | None:
        try:
            moment = parse_moment(row.values.get(name), label, self.zone)
        except InvalidRow as problem:
            problems.append(str(problem))
            return None
        if moment is None and required:
            problems.append(f"missing {label}")
        return moment


def _already(source: str) -> str:
    return "already imported" if source == LEGACY else f"already present (from {source})"
