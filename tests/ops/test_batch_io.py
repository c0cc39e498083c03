"""Reading messy CSV input and writing a report a spreadsheet cannot be tricked by."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from align_integration.workflows.batch.rows import (
    BatchInputError,
    neutralise,
    read_csv_rows,
    write_report,
)


def test_bom_crlf_blank_lines_and_extra_columns_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"\xef\xbb\xbfOrder Date,Case ID,Medical Record Number\r\n"
        b"2024-01-01,  abc  ,M1\r\n"
        b"\r\n"
        b",,\r\n"
        b"2024-01-02,def,M2\r\n"
    )
    rows = read_csv_rows(path)
    assert [(r.line, r.case_ref, r.problem) for r in rows] == [(2, "abc", ""), (5, "def", "")]


def test_bad_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('case_id,comment\n1,fine\n,no case\n"multi\nline",x\n2,\n3,ok\n')
    rows = read_csv_rows(path, with_comment=True)
    assert [(r.line, r.problem) for r in rows] == [
        (2, ""),
        (3, "case_id is empty"),
        (4, ""),  # a quoted field spanning two lines starts on line 4
        (6, "comment is empty"),
        (7, ""),
    ]


def test_default_comment_fills_empty_cells_and_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("case_id,comment\n1,\n2,own words\n")
    rows = read_csv_rows(path, with_comment=True, default_comment="Revision requested.")
    assert [r.comment for r in rows] == ["Revision requested.", "own words"]
    no_column = tmp_path / "no-comment.csv"
    no_column.write_text("case_id\n1\n")
    with pytest.raises(BatchInputError, match="no comment column"):
        read_csv_rows(no_column, with_comment=True)
    assert read_csv_rows(no_column, with_comment=True, default_comment="x")[0].comment == "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\r\n\r\n", "is empty"),
        (b"id,mrn\n1,2\n", "no case_id column"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(BatchInputError, match=message):
        read_csv_rows(path)
    with pytest.raises(BatchInputError, match="cannot read"):
        read_csv_rows(tmp_path / "missing.csv")


def test_semicolon_separated_and_windows_encoded_files(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("Case-ID;Comment\r\n7;Zahnlücke schließen\r\n".encode("cp1252"))
    [row] = read_csv_rows(path, with_comment=True)
    assert (row.case_ref, row.comment) == ("7", "Zahnlücke schließen")


def test_uuid_references_compare_in_one_spelling(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "case_id\n3F2504E0-4F89-11D3-9A0C-0305E82C3301\n3f2504e0-4f89-11d3-9a0c-0305e82c3301\n"
    )
    first, second = read_csv_rows(path)
    assert first.key == second.key


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised(prefix: str) -> None:
    assert neutralise(prefix + "HYPERLINK(1)") == "'" + prefix + "HYPERLINK(1)"


def test_report_is_written_whole_with_neutralised_cells(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.csv"
    write_report(
        path, [(2, "=cmd|' /C calc'!A0", "failed", 404, "@SUM(1)"), (3, "7", "ok", "", "")]
    )
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["line", "case_id", "outcome", "status", "message"]
    assert rows[1] == ["2", "'=cmd|' /C calc'!A0", "failed", "404", "'@SUM(1)"]
    assert rows[2] == ["3", "7", "ok", "", ""]
    assert [p.name for p in path.parent.iterdir()] == ["report.csv"]


def test_an_exact_case_id_column_wins_over_case_id_spelled_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("Case ID,Medical Record Number,case_id\n17,M1,uuid-of-17\n18\n")
    first, second = read_csv_rows(path)
    assert first.case_ref == "uuid-of-17"
    assert (second.line, second.problem) == (3, "case_id is empty")  # a short row


def test_an_unreadable_row_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("case_id\n1\n" + "x" * 200_000 + "\n3\n")  # over the csv field limit
    rows = read_csv_rows(path)
    assert [(r.line, r.case_ref) for r in rows] == [(2, "1"), (3, ""), (4, "3")]
    assert rows[1].problem.startswith("unreadable row: field larger than field limit")
