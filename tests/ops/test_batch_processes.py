"""A batch spread over forked processes, as ``--concurrency 16`` runs on a machine with two
CPUs or more: real ``align_clincheck_accept`` processes on PostgreSQL against the sandbox.
Every case is accepted once, duplicates found across the shares, every row reported in
input order, Ctrl-C stops all processes and a re-run resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from align_integration.workflows.batch.processes import automatic_processes, cannot_fork_reason
from tests.ops.conftest import accepted_once, communicate, manage, read_report, write_csv


def test_processes_follow_the_rows_in_flight_and_the_cpus() -> None:
    assert automatic_processes(16, 2) == 2
    assert automatic_processes(16, 8) == 2
    assert automatic_processes(64, 4) == 4
    assert automatic_processes(16, 1) == 1
    assert automatic_processes(4, 8) == 1  # the default concurrency: one process
    assert automatic_processes(16, None) == 1


def test_no_fork_while_another_thread_runs() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert "other thread" in cannot_fork_reason()  # (the others this process runs too)
    finally:
        release.set()
        thread.join()


def slow_batch_under_way(
    tmp_path: Path, shared_db: dict[str, str], sent_case: Any, align_sandbox: Any, *extra: str
) -> tuple[list[Any], tuple[str, ...], subprocess.Popen[str]]:
    """16 cases accepted at 0.4 s each by two processes of one thread, once the first
    accept reached the sandbox: (the cases, the command's arguments, the command)."""
    cases = [sent_case() for _ in range(16)]
    align_sandbox.inject_fault("clincheck_accept", delay=0.4, times=None)
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[case.uuid] for case in cases])
    args = ("align_clincheck_accept", "--csv", str(path), "--concurrency", "2", "--processes", "2")
    command = manage(shared_db, *args, *extra)
    deadline = time.monotonic() + 60
    while not align_sandbox.count("clincheck_accept") and time.monotonic() < deadline:
        time.sleep(0.05)
    return cases, args, command


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_accept_each_case_once_and_report_every_row(
    tmp_path: Path, shared_db: dict[str, str], sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case() for _ in range(10)]
    align_sandbox.inject_fault("clincheck_accept", delay=0.05, times=None)
    refs = [str(case.uuid) for case in cases]
    # The first case again by another spelling of its reference, and a case that is not.
    rows = [[ref] for ref in refs] + [[refs[0].upper()], ["0" * 32]]
    path = write_csv(tmp_path / "in.csv", ["case_id"], rows)
    report = tmp_path / "report.csv"

    code, output = communicate(
        manage(
            shared_db,
            "align_clincheck_accept",
            "--csv",
            str(path),
            "--concurrency",
            "4",
            "--processes",
            "2",
            "--report",
            str(report),
        )  # fmt: skip
    )

    assert code == 1, output  # the unknown case failed
    assert "12 rows: 10 succeeded, 0 already done, 1 duplicates, 1 failed" in output
    assert ", 2 processes" in output
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
    assert align_sandbox.count("clincheck_accept") == 10
    reported = read_report(report)
    assert [row["case_id"] for row in reported] == [row[0] for row in rows]
    assert [row["outcome"] for row in reported] == ["succeeded"] * 10 + [
        "skipped: duplicate",
        "failed",
    ]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failing_bulk_lookup_falls_back_to_one_lookup_per_row(
    tmp_path: Path, shared_db: dict[str, str], sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case() for _ in range(4)]
    path = write_csv(tmp_path / "in.csv", ["case_id"], [[case.uuid] for case in cases])
    env = {
        **shared_db,
        "ALIGN_TEST_SETTINGS": json.dumps(
            {"CASE_ADAPTER": "tests.adapters.BrokenBulkLookupAdapter"}
        ),
    }

    code, output = communicate(
        manage(env, "align_clincheck_accept", "--csv", str(path), "--processes", "2")
    )

    assert code == 0, output
    assert "4 rows: 4 succeeded" in output
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_every_process_and_a_rerun_resumes(
    tmp_path: Path, shared_db: dict[str, str], sent_case: Any, align_sandbox: Any
) -> None:
    report = tmp_path / "report.csv"
    cases, args, command = slow_batch_under_way(
        tmp_path, shared_db, sent_case, align_sandbox, "--report", str(report)
    )
    command.send_signal(signal.SIGINT)

    code, output = communicate(command)

    assert code == 130, output
    outcomes = [row["outcome"] for row in read_report(report)]
    assert len(outcomes) == 16
    assert 0 < outcomes.count("succeeded") < 16
    assert outcomes.count("succeeded") + outcomes.count("not run: interrupted") == 16

    align_sandbox.clear_faults()
    code, output = communicate(manage(shared_db, *args))
    assert code == 0, output
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}


@pytest.mark.django_db
def test_cases_are_found_in_bulk_by_the_rule_of_get_case(
    make_case: Any, django_assert_num_queries: Any
) -> None:
    from align_integration.adapters import CaseAdapter

    first, second = make_case(), make_case()
    refs = [str(first.uuid), str(second.uuid).upper(), f" {first.uuid} ", "0" * 32, "nonsense"]
    adapter = CaseAdapter()

    with django_assert_num_queries(1):
        found = adapter.get_cases(refs)
        assert adapter.patient(found[refs[1]]).mrn == second.patient.medical_record_number

    assert {ref: case.pk for ref, case in found.items()} == {
        refs[0]: first.pk,
        refs[1]: second.pk,
        refs[2]: first.pk,
    }
    for ref in refs:  # the same answers as get_case, one by one
        if ref in found:
            assert adapter.get_case(ref).pk == found[ref].pk
        else:
            with pytest.raises(LookupError):
                adapter.get_case(ref)


@pytest.mark.django_db
def test_an_adapter_with_its_own_get_case_is_asked_per_reference(make_case: Any) -> None:
    from tests.adapters import CaseNumberLookupAdapter

    case = make_case()
    adapter = CaseNumberLookupAdapter()

    assert {ref: c.pk for ref, c in adapter.get_cases([case.case_number, "x"]).items()} == {
        case.case_number: case.pk
    }
    assert adapter.get_cases([str(case.uuid)]) == {}  # its rule, not the default one


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_take_no_new_row_once_the_command_is_killed(
    tmp_path: Path, shared_db: dict[str, str], sent_case: Any, align_sandbox: Any
) -> None:
    cases, args, command = slow_batch_under_way(tmp_path, shared_db, sent_case, align_sandbox)
    command.kill()  # SIGKILL: no handler runs in the parent
    command.communicate(timeout=30)

    time.sleep(1.5)  # the rows in flight finish (0.4 s each)
    sent = align_sandbox.count("clincheck_accept")
    time.sleep(2)
    assert align_sandbox.count("clincheck_accept") == sent < 16  # no new row was started

    align_sandbox.clear_faults()
    code, output = communicate(manage(shared_db, *args))
    assert code == 0, output
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
