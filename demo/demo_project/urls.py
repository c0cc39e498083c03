"""URLs of the demo: its own pages, Django's login/logout, the admin and the app."""

from __future__ import annotations

from cases import views
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", views.home, name="home"),
    path("staff/cases/", views.staff_cases, name="staff-cases"),
    path("staff/cases/<uuid:case_uuid>/", views.staff_case, name="staff-case"),
    path("staff/cases/<uuid:case_uuid>/gender/", views.set_gender, name="set-gender"),
    path(
        "staff/cases/<uuid:case_uuid>/aligners-bought/",
        views.mark_aligners_bought,
        name="aligners-bought",
    ),
    path(
        "staff/cases/<uuid:case_uuid>/itero-scan/",
        views.take_itero_scan,
        name="take-itero-scan",
    ),
    path("provider/cases/", views.provider_cases, name="provider-cases"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("align/", include("align_integration.urls")),
    # No media route: case files (patient data) are served only by the app's
    # authenticated case-asset-download view (docs/security.md).
]
