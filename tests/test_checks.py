"""System checks: each misconfiguration is reported by its stable id, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from align_integration.checks import check_settings


def ids(settings: Any) -> dict[str, str]:
    return {problem.id: problem.msg for problem in check_settings()}


def configure(settings: Any, **changes: Any) -> None:
    config = dict(settings.ALIGN_INTEGRATION)
    for key, value in changes.items():
        if key == "SERVICE":
            config["SERVICE"] = {**config["SERVICE"], **value}
        else:
            config[key] = value
    settings.ALIGN_INTEGRATION = config


def test_the_test_settings_pass(settings: Any) -> None:
    settings.DEBUG = True  # LocMem is fine while DEBUG
    assert check_settings() == []


@pytest.mark.parametrize("key", ["BASE_URL", "CLIENT_ID", "CLIENT_SECRET"])
def test_missing_service_key_is_e001_naming_it(settings: Any, key: str) -> None:
    configure(settings, SERVICE={key: ""})
    problems = ids(settings)
    assert "align_integration.E001" in problems
    assert key in problems["align_integration.E001"]


def test_case_model_that_does_not_exist_is_e002(settings: Any) -> None:
    settings.ALIGN_INTEGRATION_CASE_MODEL = "nope.Case"
    assert "align_integration.E002" in ids(settings)


@pytest.mark.parametrize("path", ["no.such.Adapter", "align_integration.conf.get_setting"])
def test_bad_adapter_path_is_e003(settings: Any, path: str) -> None:
    configure(settings, CASE_ADAPTER=path)
    assert "align_integration.E003" in ids(settings)


def test_unknown_token_cache_alias_is_e004(settings: Any) -> None:
    configure(settings, TOKEN_CACHE="tokens")
    assert "'tokens'" in ids(settings)["align_integration.E004"]


def test_plain_http_outside_debug_is_e005_but_loopback_is_fine(settings: Any) -> None:
    settings.DEBUG = False
    configure(settings, SERVICE={"BASE_URL": "http://align.example.com"})
    assert "align_integration.E005" in ids(settings)
    configure(settings, SERVICE={"BASE_URL": "http://127.0.0.1:8765"})
    assert "align_integration.E005" not in ids(settings)
    settings.DEBUG = True
    configure(settings, SERVICE={"BASE_URL": "http://align.example.com"})
    assert "align_integration.E005" not in ids(settings)


def test_per_process_token_cache_outside_debug_is_w002(settings: Any) -> None:
    settings.DEBUG = False
    assert "align_integration.W002" in ids(settings)
    settings.DEBUG = True
    assert "align_integration.W002" not in ids(settings)


def test_malformed_callback_secret_is_e007_and_none_is_w001(settings: Any) -> None:
    configure(settings, CALLBACK_SECRETS=["plain-secret"])
    assert "align_integration.E007" in ids(settings)
    configure(settings, CALLBACK_SECRETS=[])
    assert "align_integration.W001" in ids(settings)


def test_partial_itero_settings_are_e008(settings: Any) -> None:
    configure(settings, ITERO={"CLIENT_ID": "x"})
    problems = [p for p in check_settings() if p.id == "align_integration.E008"]
    assert any("OAUTH_BASE_URL" in p.msg for p in problems)
    assert not any("CLIENT_ID'" in p.msg for p in problems)


def test_checks_run_through_manage_py_check(settings: Any) -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    configure(settings, SERVICE={"CLIENT_SECRET": ""})
    with pytest.raises(SystemCheckError, match=r"align_integration\.E001"):
        call_command("check")


def test_unknown_callback_processing_is_e010(settings: Any) -> None:
    configure(settings, CALLBACK_PROCESSING="later")
    assert "align_integration.E010" in ids(settings)
    configure(settings, CALLBACK_PROCESSING="deferred")
    assert "align_integration.E010" not in ids(settings)


@pytest.mark.parametrize("interval", [0, 60, 119.5, "120"])
def test_polling_faster_than_align_allows_is_e011(settings: Any, interval: Any) -> None:
    configure(settings, ITERO={"POLL_INTERVAL": interval})
    assert "align_integration.E011" in ids(settings)


def test_polling_every_two_minutes_or_slower_passes(settings: Any) -> None:
    configure(settings, ITERO={"POLL_INTERVAL": 120})
    assert "align_integration.E011" not in ids(settings)
    configure(settings, ITERO={"POLL_INTERVAL": 600})
    assert "align_integration.E011" not in ids(settings)


ITERO_OK = {
    "OAUTH_BASE_URL": "https://auth.itero.test",
    "BASE_URL": "https://api.itero.test",
    "LOGIN_URL": "https://login.itero.test/authorize",
    "CLIENT_ID": "x",
    "CLIENT_SECRET": "y",
    "NOTIFICATION_TOKEN": "t" * 32,
    "PUBLIC_URL": "https://lab.example.com",
}


def test_complete_itero_settings_pass(settings: Any) -> None:
    settings.DEBUG = False
    configure(settings, ITERO=dict(ITERO_OK))
    assert not [p for p in check_settings() if p.id != "align_integration.W002"]


@pytest.mark.parametrize("debug", [True, False])
def test_a_short_notification_token_is_e011_even_in_debug(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    configure(settings, ITERO={**ITERO_OK, "NOTIFICATION_TOKEN": "t" * 31})
    problems = ids(settings)
    assert "31 characters" in problems["align_integration.E012"]
    assert "t" * 31 not in problems["align_integration.E012"]  # the secret is never shown


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("http://lab.example.com", "align_integration.E013"),
        ("lab.example.com", "align_integration.E013"),
        ("https://", "align_integration.E013"),
        ("", "align_integration.W003"),
        ("http://127.0.0.1:8000", None),
        ("https://lab.example.com/", None),
    ],
)
def test_the_public_url_must_be_https_outside_debug(
    settings: Any, public_url: str, expected: str | None
) -> None:
    settings.DEBUG = False
    configure(settings, ITERO={**ITERO_OK, "PUBLIC_URL": public_url})
    found = {p for p in ids(settings) if p in ("align_integration.E013", "align_integration.W003")}
    assert found == ({expected} if expected else set())
    settings.DEBUG = True
    assert not {
        p for p in ids(settings) if p in ("align_integration.E013", "align_integration.W003")
    }


def test_an_empty_chief_concern_is_e014_unless_the_adapter_gives_one(settings: Any) -> None:
    configure(settings, CHIEF_CONCERN="")
    problems = ids(settings)
    assert "CHIEF_CONCERN" in problems["align_integration.E014"]
    configure(settings, CHIEF_CONCERN="   ")
    assert "align_integration.E014" in ids(settings)
    # A host whose adapter says the chief concern itself needs no setting.
    configure(settings, CASE_ADAPTER="tests.adapters.VaultHostAdapter")
    assert "align_integration.E014" not in ids(settings)
    configure(settings, CASE_ADAPTER="tests.adapters.NotingAdapter")
    assert "align_integration.E014" in ids(settings)
    configure(settings, CHIEF_CONCERN="Crowding and spacing")
    assert "align_integration.E014" not in ids(settings)


def test_chief_concern_has_no_default() -> None:
    from align_integration.defaults import DEFAULTS

    assert DEFAULTS["CHIEF_CONCERN"] == ""


def test_a_key_this_version_does_not_read_is_w004(settings: Any) -> None:
    configure(settings, CASE_LEASE_SECONDS=300, SERVICES={"BASE_URL": "x"})
    problems = ids(settings)
    assert "CASE_LEASE_SECONDS, SERVICES" in problems["align_integration.W004"]
    settings.ALIGN_INTEGRATION = {
        key: value
        for key, value in settings.ALIGN_INTEGRATION.items()
        if key not in ("CASE_LEASE_SECONDS", "SERVICES")
    }
    assert "align_integration.W004" not in ids(settings)
