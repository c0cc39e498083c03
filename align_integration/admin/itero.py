"""Admin pages of the iTero lab connector: the connections (one per lab account, plus the
sign-in), the scans and the notifications.

For operating, not editing: everything is read-only.  The scan list has the registered
actions staff need — "retry download now", "link to case" (an intermediate form asking for
the case reference) and "return scan to doctor" (asking for the reason); each declares
``permissions=`` and writes an admin log entry.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from align_integration.adapters import get_adapter
from align_integration.admin.operations import OperatingAdmin, ReadOnlyAdmin, log_action
from align_integration.client.errors import AlignError
from align_integration.models import IteroConnection, IteroNotification, IteroScan
from align_integration.outbound import PAUSED_MESSAGE, OutboundPaused, outbound_paused
from align_integration.workflows.itero.downloads import retry_download_now
from align_integration.workflows.itero.linking import ScanBusy, link_scan_to_case
from align_integration.workflows.itero.returns import return_scan_to_doctor

TEMPLATES = "align_integration/itero/"


class LinkScanForm(forms.Form):
    case_reference = forms.CharField(
        max_length=200, help_text="The case reference used in this site's URLs (uuid or id)."
    )


class ReturnScanForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Sent to iTero with the request for a rescan. No patient names, please.",
    )


def _url(name: str, *args: str) -> str:
    try:
        return reverse(f"align_integration:{name}", args=args or None)
    except NoReverseMatch:
        return ""


@admin.register(IteroConnection)
class IteroConnectionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "account_name",
        "state",
        "paired_at",
        "discovered_at",
        "last_poll_at",
        "pages",
    )
    fields = (
        "state",
        "account_number",
        "account_name",
        "paired_at",
        "state_changed_at",
        "last_error",
        "region",
        "endpoints",
        "discovered_at",
        "notification_url",
        "last_poll_at",
        "pages",
    )
    readonly_fields = fields

    list_filter = ("state",)

    @admin.display(description="Lab account", ordering="account_number")
    def account(self, obj: IteroConnection) -> str:
        return obj.account_number or "(iTero sign-in)"

    @admin.display(description="Pages")
    def pages(self, obj: IteroConnection) -> str:
        links = [
            (_url("itero-status"), "Status"),
            (_url("itero-connect"), "Connect / pair"),
        ]
        if obj.account_number and obj.state != IteroConnection.UNPAIRED:
            links.append((_url("itero-unpair", obj.account_number), "Un-pair"))
        return format_html_join(" | ", '<a href="{}">{}</a>', [(u, t) for u, t in links if u])

    @admin.display(description="Notification URL")
    def notification_url(self, obj: IteroConnection) -> str:
        """The callback URL given to iTero, its secret segment masked."""
        if not obj.callback_url:
            return "-"
        head, _, _ = obj.callback_url.rstrip("/").rpartition("/")
        return f"{head}/•••/"


@admin.register(IteroScan)
class IteroScanAdmin(OperatingAdmin):
    list_display = (
        "pk",
        "rx_id",
        "order_id",
        "revision",
        "account_number",
        "state",
        "lab_status",
        "xml_version",
        "case_id",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
    )
    list_filter = ("state", "lab_status", "xml_version", "account_number", "source")
    search_fields = ("=rx_id", "=order_id", "=case__pk")
    actions = ["retry_download_now", "link_to_case", "return_to_doctor"]
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    @admin.action(description="Retry download now", permissions=["change"])
    def retry_download_now(self, request: HttpRequest, queryset: QuerySet[IteroScan]) -> None:
        if outbound_paused():
            self.message_user(request, PAUSED_MESSAGE, messages.ERROR)
            return
        picked = list(queryset.filter(state__in=[IteroScan.PENDING, IteroScan.FAILED]))
        done = sum(1 for scan in picked if retry_download_now(scan))
        log_action(request, picked, "Download retried from the admin.")
        level = messages.SUCCESS if picked and done == len(picked) else messages.WARNING
        self.message_user(
            request,
            f"{done} of {len(picked)} scans downloaded (only pending or failed scans with a "
            "case are retried).",
            level,
        )

    def _intermediate(
        self,
        request: HttpRequest,
        queryset: QuerySet[IteroScan],
        form: forms.Form,
        *,
        action: str,
        title: str,
        template: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "scans": list(queryset),
            "form": form,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, TEMPLATES + template, context)

    @admin.action(description="Link to case…", permissions=["change"])
    def link_to_case(
        self, request: HttpRequest, queryset: QuerySet[IteroScan]
    ) -> TemplateResponse | None:
        form = LinkScanForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                case = get_adapter().get_case(form.cleaned_data["case_reference"])
            except LookupError:
                form.add_error("case_reference", "No case with that reference.")
            else:
                linked, downloaded = [], 0
                for scan in queryset:
                    try:
                        scan = link_scan_to_case(scan, case, user=request.user)
                    except ScanBusy:
                        continue
                    linked.append(scan)
                    downloaded += int(scan.state == IteroScan.DOWNLOADED)
                log_action(request, linked, f"Linked to case {case.pk} from the admin.")
                self.message_user(
                    request,
                    f"{len(linked)} scans linked to case {case.pk}; {downloaded} downloaded "
                    "(the others are retried by the worker).",
                    messages.SUCCESS if linked else messages.WARNING,
                )
                return None
        return self._intermediate(
            request,
            queryset,
            form,
            action="link_to_case",
            title="Link iTero scans to a case",
            template="admin_link_scan.html",
        )

    @admin.action(description="Return scan to doctor…", permissions=["change"])
    def return_to_doctor(
        self, request: HttpRequest, queryset: QuerySet[IteroScan]
    ) -> TemplateResponse | None:
        form = ReturnScanForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            returned, failed = [], 0
            for scan in queryset:
                try:
                    returned.append(
                        return_scan_to_doctor(scan, form.cleaned_data["reason"], user=request.user)
                    )
                except OutboundPaused as paused:
                    self.message_user(request, str(paused), messages.ERROR)
                    return None
                except (AlignError, ValueError):
                    failed += 1
            log_action(request, returned, "Returned to the doctor from the admin.")
            self.message_user(
                request,
                f"{len(returned)} scans returned to the doctor, {failed} failed.",
                messages.SUCCESS if not failed else messages.WARNING,
            )
            return None
        return self._intermediate(
            request,
            queryset,
            form,
            action="return_to_doctor",
            title="Return iTero scans to the doctor",
            template="admin_return_scan.html",
        )


@admin.register(IteroNotification)
class IteroNotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "rx_id",
        "account_number",
        "state",
        "outcome",
        "attempts",
        "scan_link",
    )
    list_filter = ("state",)
    search_fields = ("=rx_id",)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    @admin.display(description="Scan")
    def scan_link(self, obj: IteroNotification) -> str:
        if obj.scan_id is None:
            return "-"
        url = reverse("admin:align_integration_iteroscan_change", args=[obj.scan_id])
        return format_html('<a href="{}">{}</a>', url, obj.scan_id)
