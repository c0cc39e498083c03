"""Fixtures of the iTero tests: a host case the sandbox's scans match, and the
connector's settings for the ``responses`` unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.itero.helpers import pair_through_pages

UNIT_ITERO = {
    "OAUTH_BASE_URL": "https://auth.itero.test",
    "BASE_URL": "https://api.itero.test",
    "LOGIN_URL": "https://login.itero.test/authorize",
    "CLIENT_ID": "unit-client",
    "CLIENT_SECRET": "unit-secret",
    "ALLOWED_HOSTS": [".itero.test"],
    "NOTIFICATION_TOKEN": "unit-notify-token",
}


@pytest.fixture
def itero_unit_settings(settings: Any) -> dict[str, Any]:
    """ITERO settings on made-up https hosts, for tests with ``responses``."""
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": dict(UNIT_ITERO),
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 0},
    }
    return UNIT_ITERO


@pytest.fixture
def itero_sandbox(align_sandbox: Any, tmp_path: Any) -> Iterator[Any]:
    """The sandbox, with downloads in progress in a temp folder we can inspect."""
    from django.conf import settings
    from django.test import override_settings

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    config = settings.ALIGN_INTEGRATION
    itero = {**config["ITERO"], "DOWNLOAD_TEMP_DIR": str(downloads)}
    with override_settings(ALIGN_INTEGRATION={**config, "ITERO": itero}):
        yield align_sandbox


@pytest.fixture
def scan_case(make_case: Callable[..., Any]) -> Any:
    """An eligible-but-for-STLs case whose patient's MRN is the chart number of the scans."""
    return make_case(stl_files=0, mrn="CHART-4242", first_name="Quintessa", last_name="Marlowe")


@pytest.fixture
def staff_client(client: Any, staff_user: Any) -> Any:
    client.force_login(staff_user)
    return client


@pytest.fixture
def paired_connection(db: Any, itero_unit_settings: Any) -> Any:
    """The connection row, paired with ``tests.itero.helpers.ACCOUNT`` (no tokens)."""
    from align_integration.models import IteroConnection
    from tests.itero.helpers import ACCOUNT

    connection = IteroConnection.load()
    connection.account_number = ACCOUNT
    connection.set_state(IteroConnection.PAIRED)
    connection.save()
    return connection


@pytest.fixture
def paired(itero_sandbox: Any, staff_client: Any) -> Any:
    """Paired with the sandbox's lab account through the staff pages."""
    return pair_through_pages(staff_client)
