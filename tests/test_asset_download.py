"""Case files are served only by ``case-asset-download`` (issue 13, finding 3): to the case's
provider or to staff who may view assets, always as an inert download; 404 for anyone else,
whether the file exists or not; no template or admin page links to ``MEDIA_URL``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from align_integration.models import CaseAsset

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
HTML = b"<html><script>alert(document.cookie)</script></html>"


def url(case: Any, asset: CaseAsset) -> str:
    return reverse(
        "align_integration:case-asset-download",
        kwargs={"case_ref": str(case.uuid), "asset_id": asset.pk},
    )


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def add_asset(case: Any, name: str, content: bytes, kind: str = CaseAsset.STL) -> CaseAsset:
    asset = CaseAsset(case=case, kind=kind, content_type="text/html")  # a lying stored type
    asset.file.save(name, ContentFile(content), save=True)
    return asset


@pytest.fixture
def asset_viewer(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_caseasset"))
    return user


def test_the_provider_downloads_an_inert_attachment(provider: Any, make_case: Any) -> None:
    case = make_case(provider=provider)
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    response = logged_in(provider.user).get(url(case, asset))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="stl-{asset.pk}.stl"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "model/stl"  # from the allowlist, not the row
    assert "sandbox" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert response.getvalue().startswith(b"solid ")


def test_a_file_off_the_allowlist_is_octet_stream_whatever_was_stored(
    provider: Any, make_case: Any
) -> None:
    case = make_case(provider=provider)
    legacy = CaseAsset(case=case, kind=CaseAsset.RX_HTML, content_type="text/html")
    legacy.file.save("rx.bin", ContentFile(HTML), save=True)
    # A row stored by 0.1 still points at an .html file: served inert all the same.
    stored = legacy.file.name or ""
    CaseAsset.objects.filter(pk=legacy.pk).update(file=stored.replace(".bin", ".html"))
    Path(legacy.file.path).rename(legacy.file.path.replace(".bin", ".html"))
    legacy.refresh_from_db()
    response = logged_in(provider.user).get(url(case, legacy))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="rxhtml-{legacy.pk}.bin"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_one_else_learns_whether_a_file_exists(
    provider: Any, make_case: Any, django_user_model: Any, plain_staff_user: Any
) -> None:
    case = make_case(provider=provider)
    other_case = make_case()
    asset = CaseAsset.objects.filter(case=case).first()
    foreign = CaseAsset.objects.filter(case=other_case).first()
    assert asset is not None and foreign is not None
    stranger = django_user_model.objects.create_user("stranger", password="pw")
    for user in (stranger, plain_staff_user):  # staff without view_caseasset included
        assert logged_in(user).get(url(case, asset)).status_code == 404
        assert logged_in(user).get(url(case, foreign)).status_code == 404
    client = logged_in(provider.user)
    assert client.get(url(other_case, foreign)).status_code == 404  # another case's file
    assert client.get(url(case, foreign)).status_code == 404  # its id under my case
    missing = reverse(
        "align_integration:case-asset-download",
        kwargs={"case_ref": str(case.uuid), "asset_id": 999999},
    )
    assert client.get(missing).status_code == 404
    bad_case = reverse(
        "align_integration:case-asset-download", kwargs={"case_ref": "nope", "asset_id": 1}
    )
    assert client.get(bad_case).status_code == 404


def test_anonymous_visitors_go_to_the_login_page(provider: Any, make_case: Any) -> None:
    case = make_case(provider=provider)
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    response = Client().get(url(case, asset))
    assert response.status_code == 302 and "login" in response["Location"]


def test_staff_who_may_view_assets_and_superusers_download(
    asset_viewer: Any, admin_user: Any, make_case: Any
) -> None:
    case = make_case()
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    for user in (asset_viewer, admin_user):
        assert logged_in(user).get(url(case, asset)).status_code == 200


def test_removed_files_are_for_staff_only(provider: Any, asset_viewer: Any, make_case: Any) -> None:
    case = make_case(provider=provider)
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    CaseAsset.objects.filter(pk=asset.pk).update(date_removed=timezone.now())
    assert logged_in(provider.user).get(url(case, asset)).status_code == 404
    assert logged_in(asset_viewer).get(url(case, asset)).status_code == 200


def test_a_file_gone_from_storage_is_404(provider: Any, make_case: Any) -> None:
    case = make_case(provider=provider)
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    asset.file.delete(save=False)
    CaseAsset.objects.filter(pk=asset.pk).update(file="align_integration/assets/gone.stl")
    assert logged_in(provider.user).get(url(case, asset)).status_code == 404


def test_only_get(provider: Any, make_case: Any) -> None:
    case = make_case(provider=provider)
    asset = CaseAsset.objects.filter(case=case).first()
    assert asset is not None
    assert logged_in(provider.user).post(url(case, asset)).status_code == 405


def test_the_admin_previews_through_the_download_view(admin_client: Client, make_case: Any) -> None:
    case = make_case(stl_files=0)
    image = add_asset(case, "shot.png", b"\x89PNG\r\n\x1a\n", kind=CaseAsset.CCACCEPTSCREEN)
    page = admin_client.get(
        reverse("admin:align_integration_caseasset_change", args=[image.pk])
    ).content.decode()
    assert f'<img src="{url(case, image)}"' in page
    assert "/media/" not in page


def test_no_template_or_admin_links_to_storage_urls() -> None:
    """``MEDIA_URL`` would serve patient files to anyone with the link, from our origin."""
    pattern = re.compile(r"\.file\.url|MEDIA_URL")
    sources = [
        *(ROOT / "align_integration" / "templates").rglob("*.html"),
        *(ROOT / "demo" / "templates").rglob("*.html"),
        *(ROOT / "align_integration" / "admin").glob("*.py"),
        *(ROOT / "align_integration" / "views").glob("*.py"),
        ROOT / "demo" / "demo_project" / "urls.py",
    ]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders
