"""``align_clincheck_revise --comment-column NAME --default-comment TEXT``: the old revision
query exported the provider's message *and* the internal case note; only the message may
reach Align, and an empty cell fails its row unless a default is given."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.ops.conftest import read_report, write_csv

pytestmark = pytest.mark.django_db

NOTE = "Bad Align response during Set Case Status. Action: revise. Status code: 503"


def run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("align_clincheck_revise", *args, "--concurrency", "1", stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + err.getvalue() + str(error)
    return 0, out.getvalue() + err.getvalue()


def sent_comments(sandbox: Any) -> dict[str, str]:
    return {
        call.form["caseId"]: call.form["comments"] for call in sandbox.calls("clincheck_revise")
    }


def test_the_named_column_is_the_comment_never_the_case_note(
    tmp_path: Path, sent_case: Any, align_sandbox: Any
) -> None:
    first, second, empty = sent_case(), sent_case(), sent_case()
    # The old query's columns, as exported: id, MRN, the message body, the case note.
    path = write_csv(
        tmp_path / "revisions.csv",
        ["case_id", "medical_record_number", "body", "comment"],
        [
            [first.uuid, "M1", "Close the gap at 11/21", NOTE],
            [second.uuid, "M2", "Less torque on 13", NOTE],
            [empty.uuid, "M3", "", NOTE],
        ],
    )
    report = tmp_path / "report.csv"
    code, out = run("--csv", str(path), "--comment-column", "body", "--report", str(report))
    assert code == 1  # the empty message fails its row
    assert sent_comments(align_sandbox) == {
        str(first.pk): "Close the gap at 11/21",
        str(second.pk): "Less torque on 13",
    }
    rows = read_report(report)
    assert [row["outcome"] for row in rows] == ["succeeded", "succeeded", "failed"]
    assert rows[2]["message"] == "body is empty"
    assert NOTE not in "".join(sent_comments(align_sandbox).values())

    # The old script's fallback for an empty message, asked for explicitly.
    code, out = run(
        "--csv", str(path), "--comment-column", "body", "--default-comment", "Revision Requested."
    )
    assert code == 0, out
    assert sent_comments(align_sandbox)[str(empty.pk)] == "Revision Requested."
    assert align_sandbox.count("clincheck_revise") == 3  # the first two were not sent again


def test_a_missing_comment_column_names_the_options(tmp_path: Path, sent_case: Any) -> None:
    case = sent_case()
    path = write_csv(tmp_path / "in.csv", ["case_id", "body"], [[case.uuid, "x"]])
    code, out = run("--csv", str(path), "--comment-column", "message")
    assert code == 2
    assert "no message column" in out and "--comment-column" in out and "--default-comment" in out
    # Header names match loosely, as the old exports wrote them ("Provider Message").
    path = write_csv(tmp_path / "in2.csv", ["Case ID", "Provider Message"], [[case.uuid, "y"]])
    assert run("--csv", str(path), "--comment-column", "provider_message")[0] == 0
