"""Start the demo: ``python demo/run.py`` (what ``make demo`` runs).

Standard library only.  Migrates the SQLite database, seeds the demo data afresh, starts
the Align/iTero sandbox and Django's development server (and the app's ``align_worker``
when the installed app has it), waits until the site and the sandbox answer, pairs with
the sandbox's iTero lab and seeds Align drift for ``align_reconcile``, prints where to
go, and stops everything on Ctrl-C or SIGTERM, or as soon as the site or the sandbox dies.

Environment: ``DEMO_PORT`` (default 8000) and ``SANDBOX_PORT`` (default 8765); the demo's
settings read the same variables, so the site and the sandbox find each other.
Option ``--keep-data`` keeps the cases as a previous run left them instead of re-seeding
them fresh (the sandbox itself always starts empty).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

DEMO_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DEMO_DIR))

from demo_project.env import CALLBACK_SECRET, demo_port, sandbox_port  # noqa: E402

MANAGE = DEMO_DIR / "manage.py"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def port_is_free(port: int) -> bool:
    """Nobody listens on ``port`` (connections of a server just stopped do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(url: str) -> bool:
    """True once ``url`` answers with any HTTP status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def manage(*arguments: str, env: dict[str, str]) -> None:
    """Run one ``manage.py`` command to completion; exit if it fails."""
    command = [sys.executable, str(MANAGE), *arguments]
    if subprocess.run(command, env=env, cwd=DEMO_DIR, check=False).returncode != 0:
        sys.exit(f"demo: '{' '.join(['manage.py', *arguments])}' failed; see above.")


def worker_available() -> bool:
    """Whether the installed app has the ``align_worker`` command (found without importing)."""
    spec = importlib.util.find_spec("align_integration")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return any(
        (Path(folder) / "management" / "commands" / "align_worker.py").is_file()
        for folder in locations
    )


class Children:
    """The long-running processes, each in its own session so that a Ctrl-C reaches only
    this script, which then stops them.  An optional child may exit without taking the
    others down (it is reported once)."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.optional: set[str] = set()

    def start(
        self, name: str, command: Sequence[str], env: dict[str, str], *, optional: bool = False
    ) -> None:
        self.processes[name] = subprocess.Popen(
            list(command), env=env, cwd=DEMO_DIR, start_new_session=True
        )
        if optional:
            self.optional.add(name)

    def dead(self) -> tuple[str, int] | None:
        """The name and exit code of a required child that has exited, if any."""
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            if name not in self.optional:
                return name, code
            print(f"demo: the {name} exited (code {code}); carrying on without it", file=sys.stderr)
            del self.processes[name]
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"demo: {name} did not stop in time; killing it", file=sys.stderr)
                process.kill()
                process.wait()


def banner(site: str, sandbox: str) -> str:
    return f"""
==============================================================================
  Align integration demo is running

  Site:     {site}/
  Sandbox:  {sandbox}/__sandbox__/   (plays Align and iTero)

  Logins:   staff / staff         staff portal and admin
            provider / provider   provider portal

  Click:    1. log in as staff -> Staff: cases -> DEMO-001 -> Align panel
               -> Send to Align; reopen the panel after ~2 s: sales order, plan
            2. log in as provider -> Provider: my cases -> Review -> Approve
            3. back as staff -> Mark aligners bought (sends the ClinCheck accept)
            4. .venv/bin/python demo/manage.py align_reconcile   (drift seeded on
               DEMO-101..105; then again with --fix)
            More in docs/demo.md.  Ctrl-C stops everything.
==============================================================================
""".rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keep-data", action="store_true", help="do not re-seed the demo cases afresh"
    )
    options = parser.parse_args(argv)

    site_port, box_port = demo_port(), sandbox_port()
    site, sandbox = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{box_port}"
    for name, port, variable in (
        ("site", site_port, "DEMO_PORT"),
        ("sandbox", box_port, "SANDBOX_PORT"),
    ):
        if not port_is_free(port):
            print(
                f"demo: port {port} (the {name}) is in use; free it or set {variable}.",
                file=sys.stderr,
            )
            return 2

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    env = {
        **os.environ,
        "DEMO_PORT": str(site_port),
        "SANDBOX_PORT": str(box_port),
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "PYTHONUNBUFFERED": "1",
    }
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("seed_demo", *([] if options.keep_data else ["--reset"]), env=env)

    children = Children()
    try:
        children.start(
            "sandbox",
            [
                sys.executable,
                "-m",
                "align_integration.sandbox",
                "--port",
                str(box_port),
                "--callback-url",
                f"{site}/align/callbacks/",
                "--callback-secret",
                CALLBACK_SECRET,
            ],
            env,
        )
        children.start(
            "site",
            [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{site_port}", "--noreload"],
            env,
        )
        if worker_available():
            # Runs the retries the app schedules after a failure and fetches iTero scans.
            children.start(
                "worker",
                [sys.executable, str(MANAGE), "align_worker", "--loop", "--interval", "2"],
                env,
                optional=True,
            )
        else:
            print(
                "demo: this version of the app has no align_worker command; scheduled retries "
                "and iTero scans wait until it exists",
                file=sys.stderr,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pending = {"sandbox": f"{sandbox}/__sandbox__/state", "site": f"{site}/"}
        while pending:
            if stopping.is_set():
                return 0
            if (died := children.dead()) is not None:
                print(
                    f"demo: the {died[0]} exited (code {died[1]}) while starting", file=sys.stderr
                )
                return 1
            if time.monotonic() > deadline:
                print(f"demo: {', '.join(pending)} did not answer in time", file=sys.stderr)
                return 1
            for name, url in list(pending.items()):
                if answers(url):
                    del pending[name]
            if pending:
                stopping.wait(0.3)

        paired = subprocess.run(
            [sys.executable, str(MANAGE), "pair_itero_sandbox"], env=env, cwd=DEMO_DIR, check=False
        )
        if paired.returncode != 0:
            print(
                "demo: pairing with the sandbox's iTero lab failed; pair from the iTero page",
                file=sys.stderr,
            )
        drifted = subprocess.run(
            [sys.executable, str(MANAGE), "seed_drift"], env=env, cwd=DEMO_DIR, check=False
        )
        if drifted.returncode != 0:
            print("demo: seeding drift for align_reconcile failed; see above", file=sys.stderr)
        print(banner(site, sandbox), flush=True)
        while not stopping.wait(0.5):
            if (died := children.dead()) is not None:
                print(f"demo: the {died[0]} exited (code {died[1]}); stopping", file=sys.stderr)
                return 1
        print("\ndemo: stopping", flush=True)
        return 0
    finally:
        children.stop()


if __name__ == "__main__":
    sys.exit(main())
