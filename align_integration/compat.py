"""Help for projects moving off the in-repo Align tool (``tools.align``).

Every name of the old tool and what replaces it (docs/migration.md walks through the move):

- ``from tools.align import Align`` -> ``from align_integration import Align``; its methods
  ``initiate_align_order(request, case)``, ``set_case_status(user, case, action)`` (plus
  ``comment=`` for a revision) and ``create_acceptance_screenshot(case, data_url)`` keep their
  names and the ``status_code, errors = result`` shape.
- ``SDC_CACHING_ENABLED = True`` -> nothing: ``Align().token`` is always cached in the cache
  alias ``ALIGN_INTEGRATION["TOKEN_CACHE"]`` (Redis in production).  Remove the setting.
- ``Case.can_send_to_align``, ``Case.align_sales_order_number``, ``Case.align_patient_id`` ->
  ``align_integration.cases.AlignCaseMixin`` mixed into the case model (same property names),
  or the functions of ``align_integration.cases``.
- waffle flags ``initiate-align-order`` and ``set-align-order-status`` -> unchanged.
- the staff view ``initiate_align_order`` -> URL ``align_integration:staff-align-initiate-order``.
- the ad-hoc scripts -> ``manage.py align_clincheck_accept`` (ClinCheck accept),
  ``align_clincheck_revise`` (revision requests), ``align_upload_assets`` (asset upload);
  re-sending orders -> ``align_send_orders``; retrying -> ``align_worker``; checking a
  deployment -> ``align_doctor``.
- rows of ``cases_align_orders`` and ``cases_case_asset`` (kind ``CCACCEPTSCREEN``) ->
  ``AlignOrder`` and ``CaseAsset``, copied once by ``manage.py align_import_legacy``.

Settings of the old tool still present are reported twice: a ``DeprecationWarning`` when the
app loads (seen under ``python -Wd`` and in test runs) and the system check
``align_integration.W101`` (seen by ``manage.py check``, ``runserver`` and ``migrate``, since
Python hides deprecation warnings by default).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning

LEGACY_SETTINGS = {
    "SDC_CACHING_ENABLED": (
        "SDC_CACHING_ENABLED is no longer read: the Align token is always cached in the "
        "cache alias ALIGN_INTEGRATION['TOKEN_CACHE']. Remove the setting."
    ),
}
LEGACY_SETTING_CHECK_ID = "align_integration.W101"


class Replacement(NamedTuple):
    """One name of the old tool and what replaces it (``kind``: python, command, setting)."""

    old: str
    new: str
    kind: str


#: The table above as data; tests check that every replacement exists.
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


def legacy_settings_present() -> list[str]:
    """Names of the old tool's settings that the project still defines."""
    return [name for name in LEGACY_SETTINGS if hasattr(settings, name)]


def warn_legacy_settings() -> None:
    """A ``DeprecationWarning`` per old setting; called from ``AppConfig.ready``."""
    for name in legacy_settings_present():
        warnings.warn(LEGACY_SETTINGS[name], DeprecationWarning, stacklevel=2)


@register(Tags.compatibility)
def check_legacy_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckWarning]:
    """The same message as a system check, which ``manage.py`` always shows."""
    return [
        CheckWarning(LEGACY_SETTINGS[name], id=LEGACY_SETTING_CHECK_ID)
        for name in legacy_settings_present()
    ]
