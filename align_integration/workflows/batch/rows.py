"""Reading the batch commands' CSV input and writing their CSV report.

Input columns are found by header name (``case_id``, and the comment column: ``comment``
unless another is named; "Case ID" and "case-id" match too, as the old queries' exports
name them, though an exact name wins), every other column is ignored.  The file is read
by :mod:`align_integration.workflows.csv_files` (byte-order mark, CRLF, blank lines,
``;`` as separator, a Windows-1252 save).  A row that
cannot be used is kept with its problem and line number, so the report can say which line
was skipped and why.

The report has one row per input row.  Cells that a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from align_integration.workflows.csv_files import csv_lines, read_text

CASE_COLUMN = "case_id"
COMMENT_COLUMN = "comment"
MAX_CASE_REF_LENGTH = 200
REPORT_COLUMNS = ("line", "case_id", "outcome", "status", "message")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class BatchInputError(ValueError):
    """The input as a whole cannot be used (no file, no ``case_id`` column…)."""


@dataclass(frozen=True)
class InputRow:
    """One input row: a case reference (and comment), or the problem that makes it unusable.

    ``line`` is the row's line number in the CSV file (the header is line 1), ``None`` for
    cases given on the command line.
    """

    line: int | None
    case_ref: str
    comment: str = ""
    problem: str = ""

    @property
    def key(self) -> str:
        """The reference as compared for duplicates (UUIDs in one spelling)."""
        try:
            return str(uuid.UUID(self.case_ref))
        except ValueError:
            return self.case_ref


def normalise_header(name: str) -> str:
    return "_".join(name.strip().lstrip("\ufeff").lower().replace("-", " ").split())


def column_index(header: list[str], name: str) -> int | None:
    """The column called exactly ``name``, else the first whose name normalises to it."""
    wanted = name.strip().lower()
    exact = [i for i, cell in enumerate(header) if cell.strip().lower() == wanted]
    loose = [
        i for i, cell in enumerate(header) if normalise_header(cell) == normalise_header(wanted)
    ]
    found = exact or loose
    return found[0] if found else None


def read_csv_rows(
    path: str | os.PathLike[str],
    *,
    with_comment: bool = False,
    default_comment: str = "",
    comment_column: str = COMMENT_COLUMN,
) -> list[InputRow]:
    """The rows of a CSV file; raises :class:`BatchInputError` when the file is unusable.

    ``with_comment``: the rows need a comment, read from ``comment_column``; an empty cell
    takes ``default_comment``, and without one the row fails.
    """
    try:
        text = read_text(path)
    except OSError as error:
        raise BatchInputError(f"cannot read {path}: {error.strerror or error}") from None
    columns: tuple[int, int | None] | None = None
    rows: list[InputRow] = []
    for row in csv_lines(text):
        if row.problem:
            rows.append(InputRow(row.line, "", problem=row.problem))
        elif columns is None:
            columns = _columns(
                row.cells,
                with_comment=with_comment,
                default_comment=default_comment,
                comment_column=comment_column,
            )
        else:
            rows.append(
                _row(columns, row.cells, row.line, with_comment, default_comment, comment_column)
            )
    if columns is None:
        raise BatchInputError(f"{path} is empty: expected a header row with {CASE_COLUMN}")
    return rows


def _columns(
    header: list[str], *, with_comment: bool, default_comment: str, comment_column: str
) -> tuple[int, int | None]:
    """(case column, comment column) of the header row; refuses a header without them."""
    found = ", ".join(normalise_header(name) for name in header if name.strip()) or "none"
    case_index = column_index(header, CASE_COLUMN)
    comment_index = column_index(header, comment_column) if with_comment else None
    if case_index is None:
        raise BatchInputError(f"the CSV has no {CASE_COLUMN} column (columns found: {found})")
    if with_comment and comment_index is None and not default_comment:
        raise BatchInputError(
            f"the CSV has no {comment_column} column (columns found: {found}); "
            "name the comment column with --comment-column, or give --default-comment "
            "for every row"
        )
    return case_index, comment_index


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _row(
    columns: tuple[int, int | None],
    cells: list[str],
    line: int,
    with_comment: bool,
    default_comment: str,
    comment_column: str = COMMENT_COLUMN,
) -> InputRow:
    case_ref = _cell(cells, columns[0])
    comment = _cell(cells, columns[1]) or default_comment.strip()
    if not case_ref:
        return InputRow(line, "", comment, problem=f"{CASE_COLUMN} is empty")
    if len(case_ref) > MAX_CASE_REF_LENGTH:
        return InputRow(line, case_ref[:40] + "…", comment, problem=f"{CASE_COLUMN} is too long")
    if with_comment and not comment:
        return InputRow(line, case_ref, "", problem=f"{comment_column} is empty")
    return InputRow(line, case_ref, comment)


def command_line_rows(case_refs: Iterable[str], comment: str = "") -> list[InputRow]:
    """Rows for ``--case`` arguments (no line numbers)."""
    rows = []
    for ref in case_refs:
        ref = ref.strip()
        rows.append(InputRow(None, ref, comment, problem="" if ref else "empty case reference"))
    return rows


# -- the report -------------------------------------------------------------------------------
def neutralise(value: object) -> str:
    """A cell a spreadsheet shows as text, never evaluates as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_report(
    path: str | os.PathLike[str],
    rows: Iterable[Iterable[object]],
    columns: Iterable[str] = REPORT_COLUMNS,
) -> None:
    """Write the report atomically (a half-written report never replaces a whole one)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".csv", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([neutralise(cell) for cell in row])
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
