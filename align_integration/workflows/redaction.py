"""Redacting vendor text before it is kept for support (``RemoteOperation.vendor_detail``).

The app never shows vendor text (see :mod:`align_integration.workflows.errors`); this is
the one place some is kept, for a superuser chasing a failure with the vendor.  Redaction
is deliberately greedy: a support engineer loses a few characters, a patient loses nothing.

- The text is folded first: accents stripped (``José`` -> ``Jose``), so every comparison
  below is case- and accent-insensitive.
- The request's patient: each name and every part of it (``Zebulon-Quixote``,
  ``ZEBULON QUIXOTE``), the MRN with any case and separators (``DEMO-MRN-001``,
  ``demo mrn 001``, ``demomrn001``), email, phone digits with any separators, and the date
  of birth in compact digit forms (``19910205``, ``050291``).
- Whatever the patient: dates in any common format (``05/02/1991``, ``1991-02-05``,
  ``02.05.1991``, ``5 Feb 1991``, ``February 5th, 1991``, ``Feb 1991``), email addresses,
  phone-like digit runs, and the value after a label such as ``MRN``, ``chart number``,
  ``born``, ``DOB``, ``firstName`` or ``name``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from align_integration.adapters import PatientData, iso_date

REDACTED = "[redacted]"
MAX_DETAIL = 2000

_SEP = r"[\W_]*"
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_GENERIC: list[tuple[re.Pattern[str], str]] = [
    # 05/02/1991, 1991-02-05, 02.05.1991, 5-2-91, 1991/2/5
    (re.compile(r"(?<!\w)\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}(?!\w)"), REDACTED),
    # 5 Feb 1991, 5th of February, 1991, 05-Feb-1991
    (
        re.compile(rf"(?<!\w){_DAY}(?:\s+of)?[\s./-]*{_MONTHS}\.?[\s,./-]*\d{{2,4}}(?!\w)", re.I),
        REDACTED,
    ),
    # February 5th, 1991, Feb. 5 1991, Feb 1991
    (
        re.compile(rf"(?<!\w){_MONTHS}\.?[\s./-]*(?:{_DAY}[\s,./-]+)?\d{{2,4}}(?!\w)", re.I),
        REDACTED,
    ),
    # e-mail addresses
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), REDACTED),
    # labelled values: "MRN demo-mrn-001", "chartNumber=ABC", "born 1991", "DOB: ..."
    (
        re.compile(
            r"(?<!\w)(mrn|medical\s*record(?:\s*number)?|record\s*number|chart\s*number"
            r"|chartnumber|patient\s*id|dob|date\s*of\s*birth|dateofbirth|birth\s*date|born"
            r"|first\s*name|firstname|last\s*name|lastname|surname|given\s*name|name"
            r"|e-?mail|phone|telephone)(?!\w)\s*(?:is|was|on|of)?\s*[:=#]?\s*"
            r"(?!\[redacted\])[^\s,;]+",
            re.I,
        ),
        rf"\1 {REDACTED}",
    ),
    # phone-like runs of 7 or more digits, with separators
    (re.compile(r"(?<!\w)\+?\(?\d(?:[\s().-]*\d){6,}(?!\w)"), REDACTED),
]


def fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _loose(value: str, *, minimum: int) -> re.Pattern[str] | None:
    """A pattern for ``value``'s letters and digits with any separators between them."""
    core = [char for char in fold(value) if char.isalnum()]
    if len(core) < minimum:
        return None
    body = _SEP.join(re.escape(char) for char in core)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.I)


def _word(value: str) -> re.Pattern[str] | None:
    value = fold(value).strip()
    if len(value) < 2:
        return None
    return re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.I)


def _birth_date(value: Any) -> dt.date | None:
    text = iso_date(value)
    return dt.date.fromisoformat(text) if text else None


def patient_patterns(patient: PatientData | None) -> list[re.Pattern[str]]:
    """The patterns that find ``patient``'s own values in any case and spacing."""
    if patient is None:
        return []
    patterns: list[re.Pattern[str] | None] = []
    for name in (patient.first_name, patient.last_name):
        name = name or ""
        patterns.append(_loose(name, minimum=2))
        patterns.extend(_word(part) for part in re.split(r"[\s\-'\u2019.]+", name))
    patterns.append(_loose(patient.mrn or "", minimum=3))
    patterns.append(_word(patient.email or ""))
    digits = re.sub(r"\D", "", patient.phone or "")
    patterns.append(_loose(digits, minimum=5))
    born = _birth_date(patient.date_of_birth)
    if born is not None:
        for form in ("%Y%m%d", "%d%m%Y", "%m%d%Y", "%d%m%y", "%m%d%y", "%y%m%d"):
            patterns.append(re.compile(rf"(?<!\d){born.strftime(form)}(?!\d)"))
    return [pattern for pattern in patterns if pattern is not None]


def redact(text: str, patient: PatientData | None = None) -> str:
    """``text`` folded, with the patient's values and anything that looks like PHI replaced."""
    cleaned = fold(str(text))
    for pattern in patient_patterns(patient):
        cleaned = pattern.sub(REDACTED, cleaned)
    for pattern, replacement in _GENERIC:
        cleaned = pattern.sub(replacement, cleaned)
    return cleaned


def vendor_detail(messages: Iterable[Any], patient: PatientData | None = None) -> str:
    """The vendor's messages, redacted and joined, for ``RemoteOperation.vendor_detail``."""
    return "; ".join(redact(str(message)[:1000], patient) for message in messages)[:MAX_DETAIL]
