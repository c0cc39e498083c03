"""URLs of the app: ``path("align/", include("align_integration.urls"))`` in the host."""

from django.urls import path

from align_integration.views import assets, callbacks, health, itero, provider, staff

app_name = "align_integration"

urlpatterns = [
    path("staff/cases/<str:case_ref>/", staff.align_panel, name="staff-align-panel"),
    path(
        "staff/cases/<str:case_ref>/initiate-order/",
        staff.initiate_order,
        name="staff-align-initiate-order",
    ),
    path("provider/cases/<str:case_ref>/", provider.case_review, name="provider-case-review"),
    path(
        "provider/cases/<str:case_ref>/action/",
        provider.case_action,
        name="provider-case-action",
    ),
    path(
        "cases/<str:case_ref>/assets/<int:asset_id>/",
        assets.download_asset,
        name="case-asset-download",
    ),
    path("callbacks/", callbacks.receive_callback, name="callbacks"),
    path(
        "itero/notifications/<str:token>/",
        itero.receive_notification,
        name="itero-notifications",
    ),
    path("itero/connect/", itero.connect, name="itero-connect"),
    path("itero/oauth/callback/", itero.oauth_callback, name="itero-oauth-callback"),
    path("itero/pair/", itero.pair, name="itero-pair"),
    path("itero/unpair/<path:account_number>/", itero.unpair, name="itero-unpair"),
    path("itero/", itero.connection_status, name="itero-status"),
    path("health/", health.health, name="health"),
]
