"""Case files (scans, Rx documents, screenshots: patient data), served only here.

``case-asset-download`` (kwargs ``case_ref`` and ``asset_id``) streams one file of one
case to:

- the case's provider (``CaseAdapter.provider_can_act``), for files not removed;
- active staff holding ``align_integration.view_caseasset`` (the admin's own "view case
  asset" permission, which superusers have): the same right that shows the asset in the
  admin, so the admin's links work for exactly the people who see them.

Anyone else signed in gets 404, as for a case or file that does not exist (existence is not
revealed); anonymous visitors go to the login page.  Every answer is a download
(``Content-Disposition: attachment``) with ``X-Content-Type-Options: nosniff``, a content
type from the allowlist only (``models.assets.SAFE_TYPES``, else
``application/octet-stream``), a sandboxing Content-Security-Policy and ``no-store``
caching, so that no stored file can run in the site's origin.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.views.decorators.http import require_GET

from align_integration.adapters import get_adapter
from align_integration.models import CaseAsset
from align_integration.models.assets import safe_content_type, safe_extension
from align_integration.views.common import case_or_404

STAFF_PERMISSION = "align_integration.view_caseasset"


def staff_may_download(user: Any) -> bool:
    return bool(user.is_active and user.is_staff and user.has_perm(STAFF_PERMISSION))


def download_name(asset: CaseAsset) -> str:
    """The name the browser saves it under: kind and id, never an original file name."""
    return f"{asset.kind.lower()}-{asset.pk}{safe_extension(asset.file.name or '')}"


@require_GET
def download_asset(request: HttpRequest, case_ref: str, asset_id: int) -> HttpResponseBase:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    case = case_or_404(case_ref)
    staff = staff_may_download(request.user)
    if not staff and not get_adapter().provider_can_act(request.user, case):
        raise Http404("No such file.")
    assets = CaseAsset.objects.filter(case_id=case.pk, pk=asset_id)
    if not staff:
        assets = assets.current()
    asset = assets.first()
    if asset is None or not asset.file:
        raise Http404("No such file.")
    try:
        handle = asset.file.open("rb")
    except OSError:  # listed but gone from storage
        raise Http404("No such file.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=download_name(asset),
        content_type=safe_content_type(asset.file.name or ""),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
