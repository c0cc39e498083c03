"""Reading the CSV files people bring: spreadsheet saves and old queries' exports.

One reader for the batch commands' input (:mod:`.batch.rows`) and the legacy import's
exports (:mod:`.legacy.sources`):

- a byte-order mark and CRLF line ends are fine; ``;`` is the separator when the header
  holds more of them than commas (a spreadsheet's "CSV" in many locales);
- :func:`csv_lines` numbers each row with the file line it starts on (a quoted cell may
  span lines), skips blank rows, and hands back a row the ``csv`` module cannot read
  with its problem instead of stopping, so each caller decides what a bad row means.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class NotUTF8(ValueError):
    """The file is not UTF-8 (``line``: where the first byte that is not was found)."""

    def __init__(self, line: int) -> None:
        super().__init__(f"not UTF-8 at line {line}")
        self.line = line


def read_text(path: str | os.PathLike[str], *, windows_fallback: bool = True) -> str:
    """The file's text: UTF-8 (with or without BOM), else Windows-1252 (a spreadsheet's
    "CSV (Windows)") when ``windows_fallback``, else :class:`NotUTF8`.  ``OSError`` when
    the file cannot be read."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if not windows_fallback:
            raise NotUTF8(raw[: error.start].count(b"\n") + 1) from None
        return raw.decode("cp1252", errors="replace")


def delimiter_of(text: str) -> str:
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


@dataclass(frozen=True)
class CsvLine:
    """One non-blank row and the line it starts on; ``problem`` when it cannot be read."""

    line: int
    cells: list[str] = field(default_factory=list)
    problem: str = ""


def csv_lines(text: str) -> Iterator[CsvLine]:
    """The rows of ``text`` (header included), blank ones left out."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(text))
    last_line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield CsvLine(reader.line_num, problem=f"unreadable row: {error}")
            last_line = reader.line_num
            continue
        line, last_line = last_line + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield CsvLine(line, cells)
