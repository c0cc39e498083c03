"""A canary patient, the vendor error that echoes it back, and a check that finds the canary
in any case, spacing, accent or date format.

The security review's finding: Align answered ``Patient TESTY MCTESTFACE … born
05/02/1991, MRN demo-mrn-001`` about the patient "Testy McTestface", born 1991-05-02, MRN
"DEMO-MRN-001", and that text was stored and shown verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

FIRST_NAME = "Testy"
LAST_NAME = "McTestface"
BIRTH = dt.date(1991, 5, 2)
MRN = "DEMO-MRN-001"
#: make_case's defaults for every patient.
EMAIL = "patient@example.test"
PHONE = "555-0100"

PATIENT = {
    "first_name": FIRST_NAME,
    "last_name": LAST_NAME,
    "date_of_birth": BIRTH,
    "mrn": MRN,
}

#: What a vendor answers about the canary: other cases, other date formats, other spacing.
ECHO_MESSAGES = [
    "Patient TESTY MCTESTFACE \u2026 born 05/02/1991, MRN demo-mrn-001",
    "dateOfBirth: 1991-02-05 does not match testy mctestface (2 May 1991)",
    "mrn: Demo Mrn 001 is already used by McTestface, Testy; contact PATIENT@EXAMPLE.TEST",
    "phone 555 0100 / 02.05.1991 / 19910502 / Feb 5, 1991",
]
ECHO = {"errors": ECHO_MESSAGES}

_MONTHS = {2: ("feb", "february"), 5: ("may", "may")}


def _date_forms() -> set[str]:
    """Both day/month orders of the birth date in the formats people and systems write."""
    forms: set[str] = set()
    for day, month in ((2, 5), (5, 2)):
        for sep in ("-", "/", ".", " "):
            forms |= {
                f"{day:02}{sep}{month:02}{sep}1991",
                f"{day}{sep}{month}{sep}1991",
                f"1991{sep}{month:02}{sep}{day:02}",
                f"1991{sep}{month}{sep}{day}",
            }
        forms |= {f"1991{month:02}{day:02}", f"{day:02}{month:02}1991"}
        for name in _MONTHS[month]:
            forms |= {f"{day} {name} 1991", f"{name} {day}, 1991", f"{name} {day} 1991"}
    return forms


DATE_FORMS = _date_forms()
_PHONE = re.compile(r"(?<!\d)555\W*0100(?!\d)")
_ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def leaks(text: str) -> list[str]:
    """The canary's values found in ``text``, whatever their case, spacing or format."""
    folded = _ORDINAL.sub(r"\1", _fold(str(text)))
    squashed = re.sub(r"[\W_]+", "", folded)
    found = [value for value in ("testy", "mctestface") if value in folded]
    if "demomrn001" in squashed:
        found.append("mrn")
    if EMAIL in folded:
        found.append("email")
    if _PHONE.search(folded):
        found.append("phone")
    found += sorted(form for form in DATE_FORMS if form in folded)
    return found
