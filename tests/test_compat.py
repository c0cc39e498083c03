"""Moving off the old in-repo tool: the legacy setting is reported, every replacement exists."""

from __future__ import annotations

import importlib
import warnings
from typing import Any, NamedTuple

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.management import get_commands

from align_integration.compat import (
    LEGACY_SETTING_CHECK_ID,
    check_legacy_settings,
    warn_legacy_settings,
)


class Replacement(NamedTuple):
    """One name of the old tool and what replaces it (``kind``: python, command, setting)."""

    old: str
    new: str
    kind: str


#: The old tool's names and what replaces each (docs/migration.md has the same table).
REPLACEMENTS: tuple[Replacement, ...] = (
    Replacement("tools.align.Align", "align_integration.Align", "python"),
    Replacement(
        "tools.align.Align.initiate_align_order",
        "align_integration.facade.Align.initiate_align_order",
        "python",
    ),
    Replacement(
        "tools.align.Align.set_case_status",
        "align_integration.facade.Align.set_case_status",
        "python",
    ),
    Replacement(
        "tools.align.Align.create_acceptance_screenshot",
        "align_integration.facade.Align.create_acceptance_screenshot",
        "python",
    ),
    Replacement(
        "Case.can_send_to_align",
        "align_integration.cases.AlignCaseMixin.can_send_to_align",
        "python",
    ),
    Replacement(
        "Case.align_sales_order_number",
        "align_integration.cases.AlignCaseMixin.align_sales_order_number",
        "python",
    ),
    Replacement(
        "Case.align_patient_id", "align_integration.cases.AlignCaseMixin.align_patient_id", "python"
    ),
    Replacement("SDC_CACHING_ENABLED", "ALIGN_INTEGRATION['TOKEN_CACHE']", "setting"),
    Replacement("ClinCheck accept ad-hoc script", "align_clincheck_accept", "command"),
    Replacement("ClinCheck revision ad-hoc script", "align_clincheck_revise", "command"),
    Replacement("Align asset upload ad-hoc script", "align_upload_assets", "command"),
    Replacement("re-sending orders by hand", "align_send_orders", "command"),
    Replacement("retrying by hand", "align_worker", "command"),
    Replacement("checking a deployment by hand", "align_doctor", "command"),
    Replacement("cases_align_orders / cases_case_asset rows", "align_import_legacy", "command"),
)


def test_sdc_caching_enabled_warns_when_the_app_loads(settings: Any) -> None:
    settings.SDC_CACHING_ENABLED = True
    with pytest.warns(DeprecationWarning, match="SDC_CACHING_ENABLED is no longer read"):
        apps.get_app_config("align_integration").ready()


def test_the_warning_points_at_the_replacement(settings: Any) -> None:
    settings.SDC_CACHING_ENABLED = False  # present at all is enough: it is not read any more
    with pytest.warns(DeprecationWarning) as caught:
        warn_legacy_settings()
    assert "TOKEN_CACHE" in str(caught[0].message)


def test_no_warning_without_legacy_settings(settings: Any) -> None:
    assert not hasattr(settings, "SDC_CACHING_ENABLED")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_legacy_settings()
    assert check_legacy_settings() == []


def test_the_system_check_reports_it_where_warnings_are_hidden(settings: Any) -> None:
    settings.SDC_CACHING_ENABLED = True
    problems = [p for p in run_checks() if p.id == LEGACY_SETTING_CHECK_ID]
    assert len(problems) == 1
    assert "SDC_CACHING_ENABLED" in problems[0].msg


def resolve(dotted: str) -> Any:
    """The object a dotted path names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ImportError(dotted)


@pytest.mark.parametrize(
    "replacement", [r for r in REPLACEMENTS if r.kind == "python"], ids=lambda r: r.old
)
def test_every_python_replacement_exists(replacement: Any) -> None:
    assert resolve(replacement.new) is not None


@pytest.mark.parametrize(
    "replacement", [r for r in REPLACEMENTS if r.kind == "command"], ids=lambda r: r.new
)
def test_every_command_replacement_exists(replacement: Any) -> None:
    assert get_commands().get(replacement.new) == "align_integration"


def test_the_case_mixin_has_the_old_property_names() -> None:
    from tests.testapp.models import Case

    for name in ("can_send_to_align", "align_sales_order_number", "align_patient_id"):
        assert isinstance(getattr(Case, name), property)
