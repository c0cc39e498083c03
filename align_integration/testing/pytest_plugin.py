"""pytest plugin (entry point ``align_integration``): the ``align_sandbox`` fixture.

``align_sandbox`` is a running :class:`~align_integration.testing.sandbox.Sandbox` of both
vendor services on a free loopback port, with ``ALIGN_INTEGRATION`` pointed at it for the
test (:class:`~align_integration.testing.settings.use_sandbox`: service URL and credentials,
callback secret, iTero URLs, "127.0.0.1" allowed for Discovery), cached tokens forgotten
before and after. One server per test session; its state, faults, pacing and recorded
requests are reset for every test, and its callback settings put back to their defaults.

    def test_send(align_sandbox, live_server):
        align_sandbox.callback_url = live_server.url + reverse("align_integration:callbacks")
        align_sandbox.inject_fault("create_patient", status=503, times=1)
        ...
        assert align_sandbox.counts("create_patient", acted=True) == {case_ref: 1}
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .sandbox import Sandbox
from .settings import SANDBOX_NOTIFICATION_TOKEN, sandbox_settings, use_sandbox

__all__ = [
    "SANDBOX_NOTIFICATION_TOKEN",
    "_align_sandbox_server",
    "align_sandbox",
    "sandbox_settings",
]


@pytest.fixture(scope="session")
def _align_sandbox_server() -> Iterator[Sandbox]:
    sandbox = Sandbox(callback_delay=0.05).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def align_sandbox(_align_sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The sandbox, reset, with the Django settings pointed at it for this test."""
    sandbox = _align_sandbox_server
    sandbox.reset()
    sandbox.callback_url = None
    sandbox.auto_callbacks = True
    sandbox.plan_viewer_url = None
    with use_sandbox(sandbox):
        try:
            yield sandbox
        finally:
            sandbox.wait_idle(timeout=5)
