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
from typing import Any

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
