"""The batch commands against the sandbox: messy input, faults, re-runs that never repeat a
remote action, dry runs, interruption and resuming, the report."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from align_integration.models import AlignCase, CaseAsset, CaseEvent, RemoteOperation
from align_integration.workflows.batch import runner as batch
from tests.ops.conftest import accepted_once, add_screenshot, read_report, write_csv

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[int, str, str]:
    """Run a command; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def outcomes(report: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(row["line"], row["case_id"], row["outcome"]) for row in report]


def test_accept_messy_csv_with_faults_then_rerun_never_repeats(
    tmp_path: Path, sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case() for _ in range(4)]
    no_screenshot = sent_case(screenshot=False)
    refs = [str(case.uuid) for case in cases]
    path = write_csv(
        tmp_path / "accept.csv",
        ["Patient Name", "Case ID", "Vault ID"],
        [
            ["Ada", refs[0], "v"],
            ["Ada", refs[1], "v"],
            ["Ada", refs[0].upper(), "v"],  # the same case again
            ["Ada", "", "v"],
            ["Ada", "not-a-case", "v"],
            ["Ada", refs[2], "v"],
            ["Ada", str(no_screenshot.uuid), "v"],
            ["Ada", refs[3], "v"],
        ],
        bom=True,
        crlf=True,
        blank_lines=True,
    )
    # The first accept is refused; the next one answers 503 for good (Retry-After 0 keeps
    # the row's tries within the run quick): it fails with its background retry.
    align_sandbox.inject_fault("clincheck_accept", status=422, times=1)
    align_sandbox.inject_fault("clincheck_accept", status=503, retry_after=0, times=7)
    report_path = tmp_path / "report.csv"
    code, out, err = run(
        "align_clincheck_accept", "--csv", str(path), "--concurrency", "1",
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 1, err
    report = read_report(report_path)
    assert outcomes(report) == [
        ("2", refs[0], "failed"),
        ("4", refs[1], "failed"),
        ("6", refs[0].upper(), "skipped: duplicate"),
        ("8", "", "failed"),
        ("10", "not-a-case", "failed"),
        ("12", refs[2], "succeeded"),
        ("14", str(no_screenshot.uuid), "failed"),
        ("16", refs[3], "succeeded"),
    ]
    assert report[0]["status"] == "422"
    assert report[1]["status"] == "503" and "retry is scheduled" in report[1]["message"]
    assert report[3]["message"] == "case_id is empty"
    assert report[4]["status"] == "404"
    assert "screenshot" in report[6]["message"]
    assert "8 rows: 2 succeeded, 0 already done, 1 duplicates, 5 failed" in out
    assert "slowed down" in out and "6 rows tried again" in out
    assert "line 2" in err and "line 14" in err

    code, out, err = run("align_clincheck_accept", "--csv", str(path), "--report", str(report_path))
    assert code == 1  # the rows that cannot work still fail
    report = read_report(report_path)
    assert [row["outcome"] for row in report] == [
        "succeeded",
        "succeeded",
        "skipped: duplicate",
        "failed",
        "failed",
        "skipped: already done",
        "failed",
        "skipped: already done",
    ]
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
    for case in cases:  # every attempt of one accept reused one idempotency key
        keys = {
            call.idempotency_key
            for call in align_sandbox.calls("clincheck_accept")
            if call.form["caseId"] == str(case.pk)
        }
        assert len(keys) == 1
    code, _, _ = run("align_clincheck_accept", "--case", refs[0], "--case", refs[3])
    assert code == 0
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


def test_ambiguous_drop_then_rerun_is_one_accept(
    tmp_path: Path, sent_case: Any, align_sandbox: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 0},
    }
    case = sent_case()
    align_sandbox.inject_fault("clincheck_accept", drop="after", times=1)
    assert run("align_clincheck_accept", "--case", str(case.uuid))[0] == 1
    assert run("align_clincheck_accept", "--case", str(case.uuid))[0] == 0
    assert len(align_sandbox.calls("clincheck_accept")) == 2
    assert len({c.idempotency_key for c in align_sandbox.calls("clincheck_accept")}) == 1


def test_report_neutralises_formula_cells(tmp_path: Path, sent_case: Any) -> None:
    case = sent_case()
    path = write_csv(
        tmp_path / "in.csv",
        ["case_id"],
        [['=HYPERLINK("http://x")'], ["+1"], ["-2"], ["@SUM(A1)"], [str(case.uuid)]],
    )
    report_path = tmp_path / "report.csv"
    assert run("align_clincheck_accept", "--csv", str(path), "--report", str(report_path))[0] == 1
    cells = [row["case_id"] for row in read_report(report_path)]
    assert cells == ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", str(case.uuid)]


def test_revise_uses_the_comment_column_once_per_case(
    tmp_path: Path, sent_case: Any, align_sandbox: Any
) -> None:
    first, second = sent_case(), sent_case()
    path = write_csv(
        tmp_path / "revise.csv",
        ["case_id", "mrn", "comment"],
        [
            [first.uuid, "M1", "Close the gap, 11/21"],
            [second.uuid, "M2", ""],
            [first.uuid, "M1", "another comment"],
        ],
    )
    code, out, err = run("align_clincheck_revise", "--csv", str(path), "-v", "2")
    assert code == 1, err  # the empty comment
    assert "line 3" in err and "comment is empty" in err
    assert "line 2" in out and "succeeded" in out
    [call] = align_sandbox.calls("clincheck_revise")
    assert call.form["comments"] == "Close the gap, 11/21"
    code, _, _ = run("align_clincheck_revise", "--csv", str(path), "--comment", "Please revise.")
    assert code == 0
    comments = [c.form["comments"] for c in align_sandbox.calls("clincheck_revise")]
    assert comments == ["Close the gap, 11/21", "Please revise."]
    assert run("align_clincheck_revise", "--case", str(first.uuid))[0] == 2  # needs --comment


def test_upload_assets_once_per_asset_set(
    tmp_path: Path, sent_case: Any, make_case: Any, align_sandbox: Any
) -> None:
    from django.core.files.base import ContentFile

    case = sent_case(screenshot=False)
    never_sent = make_case()
    report_path = tmp_path / "report.csv"
    args = ["--case", str(case.uuid), "--case", str(never_sent.uuid), "--report", str(report_path)]
    assert run("align_upload_assets", *args)[0] == 1
    report = read_report(report_path)
    assert [r["outcome"] for r in report] == ["skipped: already done", "failed"]
    assert "no Align patient" in report[1]["message"]
    assert align_sandbox.count("upload_assets") == 1  # the order flow's own upload

    asset = CaseAsset(case=case, kind=CaseAsset.STL, content_type="model/stl")
    asset.file.save("rescan.stl", ContentFile(b"solid x\nendsolid x\n"), save=True)
    assert run("align_upload_assets", "--case", str(case.uuid))[0] == 0
    assert run("align_upload_assets", "--case", str(case.uuid))[0] == 0
    uploads = align_sandbox.calls("upload_assets")
    assert len(uploads) == 2
    assert uploads[1].form["pId"] == AlignCase.objects.get(case=case).patient_id


def test_upload_retry_is_resumed_by_the_worker(sent_case: Any, align_sandbox: Any) -> None:
    from django.core.files.base import ContentFile

    from align_integration.worker import run_due_operations

    case = sent_case(screenshot=False)
    asset = CaseAsset(case=case, kind=CaseAsset.STL, content_type="model/stl")
    asset.file.save("rescan.stl", ContentFile(b"solid x\nendsolid x\n"), save=True)
    # 503 for every try within the run (Retry-After 0 keeps them quick): a background retry.
    align_sandbox.inject_fault("upload_assets", status=503, retry_after=0, times=7)
    assert run("align_upload_assets", "--case", str(case.uuid))[0] == 1
    operation = RemoteOperation.objects.get(
        case=case, kind="upload_assets", state=RemoteOperation.RETRY_SCHEDULED
    )
    RemoteOperation.objects.filter(pk=operation.pk).update(next_attempt_at=operation.created_at)
    assert run_due_operations() == 1
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    assert [c.status for c in align_sandbox.calls("upload_assets")][-1] == 200


def test_send_orders_dry_run_then_send_then_rerun(
    tmp_path: Path, make_case: Any, align_sandbox: Any
) -> None:
    eligible = [make_case() for _ in range(2)]
    not_eligible = make_case(approved=False)
    path = write_csv(
        tmp_path / "cases.csv", ["case_id"], [[c.uuid] for c in [*eligible, not_eligible]]
    )
    report_path = tmp_path / "report.csv"
    code, out, _ = run(
        "align_send_orders", "--csv", str(path), "--dry-run", "--report", str(report_path)
    )
    assert code == 1
    assert [r["outcome"] for r in read_report(report_path)] == [
        "dry run: would send",
        "dry run: would send",
        "failed",
    ]
    assert "Photo assessment" in read_report(report_path)[2]["message"]
    assert "nothing sent" in out
    assert align_sandbox.requests == [] or align_sandbox.count("create_patient") == 0
    assert not RemoteOperation.objects.exists() and not CaseEvent.objects.exists()

    assert run("align_send_orders", "--csv", str(path))[0] == 1
    assert all(AlignCase.objects.get(case=c).order_sent for c in eligible)
    code, out, _ = run("align_send_orders", "--csv", str(path))
    assert "2 already done" in out
    assert len(align_sandbox.patients) == 2 and len(align_sandbox.orders) == 2


def test_dry_run_accept_sends_and_writes_nothing(sent_case: Any, align_sandbox: Any) -> None:
    case = sent_case()
    before = (RemoteOperation.objects.count(), CaseEvent.objects.count())
    code, out, _ = run("align_clincheck_accept", "--case", str(case.uuid), "--dry-run")
    assert code == 0
    assert "1 would be sent" in out
    assert (RemoteOperation.objects.count(), CaseEvent.objects.count()) == before
    assert align_sandbox.count("clincheck_accept") == 0


def test_interrupted_run_reports_and_resumes(
    tmp_path: Path, sent_case: Any, align_sandbox: Any, monkeypatch: Any
) -> None:
    cases = [sent_case() for _ in range(5)]
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[c.uuid] for c in cases])
    report_path = tmp_path / "report.csv"
    real = batch.process_row
    calls = {"n": 0}

    def interrupt_after_two(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of row 3
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "process_row", interrupt_after_two)
    code, out, err = run(
        "align_clincheck_accept", "--csv", str(path), "--concurrency", "1",
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 130
    assert "interrupted" in err
    assert [r["outcome"] for r in read_report(report_path)] == [
        "succeeded",
        "succeeded",
        "not run: interrupted",
        "not run: interrupted",
        "not run: interrupted",
    ]
    monkeypatch.setattr(batch, "process_row", real)
    code, out, _ = run("align_clincheck_accept", "--csv", str(path), "--report", str(report_path))
    assert code == 0
    assert [r["outcome"] for r in read_report(report_path)] == (
        ["skipped: already done"] * 2 + ["succeeded"] * 3
    )
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


def test_progress_is_shown_on_a_terminal_only(sent_case: Any) -> None:
    case = sent_case()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, plain = Terminal(), io.StringIO()
    call_command("align_clincheck_accept", "--case", str(case.uuid), "--dry-run", stderr=terminal)
    call_command("align_clincheck_accept", "--case", str(case.uuid), "--dry-run", stderr=plain)
    assert "\r" in terminal.getvalue() and "1/1 rows" in terminal.getvalue()
    assert plain.getvalue() == ""


def test_bad_input_exits_2(tmp_path: Path) -> None:
    no_column = write_csv(tmp_path / "in.csv", ["id"], [[1]])
    code, _, err = run("align_clincheck_accept", "--csv", str(no_column))
    assert code == 2 and "no case_id column" in err
    assert run("align_clincheck_accept", "--csv", str(tmp_path / "missing.csv"))[0] == 2
    assert run("align_clincheck_accept", "--case", "1", "--user", "nobody")[0] == 2
    assert run("align_clincheck_accept", "--case", "1", "--concurrency", "0")[0] == 2
    code, _, err = run("align_clincheck_accept", "--case", "1", "--processes", "0")
    assert code == 2 and "--processes must be at least 1" in err


def test_acting_user_is_on_the_timeline(sent_case: Any, staff_user: Any) -> None:
    case = sent_case()
    assert run("align_clincheck_accept", "--case", str(case.uuid), "--user", "staff")[0] == 0
    event = CaseEvent.objects.filter(case=case, action="clincheck_accept").latest("pk")
    assert event.user == staff_user


def test_a_large_file_is_deduplicated_and_reported_row_by_row(
    tmp_path: Path, make_case: Any
) -> None:
    """Many rows naming few cases: each case is checked once, every row is reported.
    (How fast a 10,000-row file goes is measured in benchmarks/, not here.)"""
    from tests.testapp.models import Case, Patient

    template = make_case(stl_files=0)
    patients = Patient.objects.bulk_create(
        Patient(first_name="A", last_name="B", medical_record_number=f"M{i}") for i in range(200)
    )
    cases = Case.objects.bulk_create(Case(patient=patient) for patient in patients)
    CaseAsset.objects.bulk_create(
        CaseAsset(case=case, kind=CaseAsset.CCACCEPTSCREEN, file="s.jpg") for case in cases
    )
    refs = [str(case.uuid) for case in cases]
    rows = [[refs[i % len(refs)], "x"] for i in range(999)] + [[template.uuid, "y"]]
    path = write_csv(tmp_path / "big.csv", ["case_id", "other"], rows, crlf=True, bom=True)
    report_path = tmp_path / "report.csv"
    code, out, _ = run(
        "align_clincheck_accept", "--csv", str(path), "--dry-run", "--concurrency", "1",
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 1  # the template case has no screenshot
    assert "1000 rows: 200 would be sent" in out
    assert "799 duplicates, 1 failed" in out
    assert len(read_report(report_path)) == 1_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_rows_each_accepted_once(
    tmp_path: Path, sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case() for _ in range(12)]
    align_sandbox.inject_fault("clincheck_accept", delay=0.05, times=None)
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[c.uuid] for c in cases + cases[:3]])
    code, out, err = run("align_clincheck_accept", "--csv", str(path), "--concurrency", "4")
    assert code == 0, err
    assert "12 succeeded, 0 already done, 3 duplicates, 0 failed" in out
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_row_whose_lookup_breaks_fails_alone(
    tmp_path: Path, settings: Any, sent_case: Any, align_sandbox: Any, concurrency: str
) -> None:
    """The cases are found (in bulk, else one by one) before any row is sent; a host
    lookup that breaks on one reference fails that row with a reason, not the batch."""
    from tests.adapters import OneBrokenLookupAdapter

    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.OneBrokenLookupAdapter",
    }
    cases = [sent_case() for _ in range(3)]
    refs = [[cases[0].uuid], [OneBrokenLookupAdapter.BROKEN], [cases[1].uuid], [cases[2].uuid]]
    path = write_csv(tmp_path / "in.csv", ["case_id"], refs)
    report = tmp_path / "report.csv"
    args = ("--csv", str(path), "--concurrency", concurrency, "--report", str(report))
    code, out, _ = run("align_clincheck_accept", *args)
    assert code == 1
    assert "3 succeeded, 0 already done, 0 duplicates, 1 failed" in out
    assert outcomes(read_report(report))[1] == ("3", OneBrokenLookupAdapter.BROKEN, "failed")
    assert read_report(report)[1]["message"] == "Unexpected error (RuntimeError)."
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


def test_a_bulk_lookup_failing_on_the_database_inside_a_transaction_falls_back(
    tmp_path: Path, settings: Any, sent_case: Any, align_sandbox: Any, postgres: None
) -> None:
    """Run inside the caller's transaction (as this test is), a bulk lookup that fails on
    PostgreSQL must not leave the transaction aborted for the rows looked up one by one."""
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.BrokenSQLBulkLookupAdapter",
    }
    cases = [sent_case() for _ in range(3)]
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[c.uuid] for c in cases])
    code, out, err = run("align_clincheck_accept", "--csv", str(path), "--concurrency", "4")
    assert code == 0, out + err
    assert "3 succeeded" in out
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


def test_a_rerun_checks_the_rows_in_bulk_in_one_process(
    tmp_path: Path, sent_case: Any, align_sandbox: Any
) -> None:
    """Rows done before are found done in a few queries, however many there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cases = [sent_case() for _ in range(30)]
    queries = {}
    for size in (10, 30):
        path = write_csv(tmp_path / f"in{size}.csv", ["case_id"], [[c.uuid] for c in cases[:size]])
        run("align_clincheck_accept", "--csv", str(path))  # the accepts go out
        with CaptureQueriesContext(connection) as captured:
            code, out, _ = run("align_clincheck_accept", "--csv", str(path))
        assert code == 0 and f"0 succeeded, {size} already done" in out
        queries[size] = len(captured)
    assert queries[30] == queries[10]
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


@pytest.mark.django_db(transaction=True)  # worker threads see the cases
def test_a_process_that_cannot_fork_says_so_and_runs_every_row(
    tmp_path: Path, sent_case: Any, align_sandbox: Any, caplog: Any
) -> None:
    """The sandbox serves from a thread of this process, so forking is off: the rows run in
    one process, and the summary and the log say why."""
    cases = [sent_case() for _ in range(4)]
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[c.uuid] for c in cases])
    args = ("--csv", str(path), "--concurrency", "2", "--processes", "2")
    code, out, err = run("align_clincheck_accept", *args)
    assert code == 0, err
    assert "4 succeeded" in out
    assert "in one process (" in out and "other thread" in out and " processes" not in out
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
    assert "processes=1 planned=2" in caplog.text


def test_rate_limiter_spaces_calls(monkeypatch: Any) -> None:
    import threading

    from align_integration.workflows.batch import pacing

    clock = [100.0]  # a clock the limiter's waits move forward
    monkeypatch.setattr(pacing.time, "monotonic", lambda: clock[0])

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            clock[0] += timeout or 0
            return self.is_set()

    limiter, stop = batch.RateLimiter(50), Stop()
    for _ in range(6):
        assert limiter.wait(stop)
    assert clock[0] == pytest.approx(100.1)  # five waits of 1/50 s after the first call
    stop.set()
    assert not batch.RateLimiter(1).wait(stop)
    assert batch.RateLimiter(0).wait(threading.Event())
    assert batch.RateLimiter(None).wait(threading.Event())


def test_screenshot_helper_is_what_accept_sends(sent_case: Any, align_sandbox: Any) -> None:
    case = sent_case(screenshot=False)
    newest = add_screenshot(case)
    assert run("align_clincheck_accept", "--case", str(case.uuid))[0] == 0
    [call] = align_sandbox.calls("clincheck_accept")
    assert (call.form["vault_id"], call.form["external_key"]) == (
        newest.vault_id,
        newest.external_key,
    )
