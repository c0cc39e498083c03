"""Admin for operating the Align side: timelines, sales orders, assets, remote operations
and stored callbacks.  Read-only; the registered actions ("retry now", "reprocess")
declare permissions and write admin log entries.

A case's timeline is the ``CaseEvent`` list filtered with ``?case=<pk>``; every list that
concerns a case links to it.  List pages run a constant number of queries per page (no
per-row lookups: columns read ``case_id``, never ``case``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from align_integration.models import (
    AlignCase,
    AlignOrder,
    CallbackEvent,
    CaseAsset,
    CaseEvent,
    RemoteOperation,
)
from align_integration.worker import retry_operations
from align_integration.workflows.callbacks.events import reprocess


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are for reading: no add, no edit, no delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def log_action(request: HttpRequest, objects: list[Any], message: str) -> None:
    """One admin log entry per object acted on."""
    if not objects:
        return
    LogEntry.objects.log_actions(  # type: ignore[call-overload]
        user_id=request.user.pk,
        queryset=objects,
        action_flag=CHANGE,
        change_message=message,
        single_object=len(objects) == 1,
    )


def timeline_url(case_pk: Any) -> str:
    return f"{reverse('admin:align_integration_caseevent_changelist')}?case={case_pk}"


@admin.display(description="Timeline")
def timeline_link(obj: Any) -> str:
    return format_html('<a href="{}">timeline</a>', timeline_url(obj.case_id))


class CaseFilter(admin.SimpleListFilter):
    """``?case=<pk>``: one case's entries.  The sidebar shows only the case chosen (cases are
    too many to list), with "All" to clear it."""

    title = "case"
    parameter_name = "case"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = request.GET.get(self.parameter_name)
        return [(value, f"Case {value}")] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(case_id=value) if value else queryset


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdmin):
    """The timelines; ``?case=<pk>`` shows one case's, newest first."""

    list_display = (
        "created_at",
        "case_id",
        "action",
        "outcome",
        "status_code",
        "message",
        "operation_id",
        "request_id",
    )
    list_filter = (CaseFilter, "outcome", "action")
    search_fields = ("=case__pk", "request_id")
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        case = request.GET.get("case")
        if case:
            extra_context = {**(extra_context or {}), "title": f"Align timeline of case {case}"}
        return super().changelist_view(request, extra_context)


@admin.register(AlignOrder)
class AlignOrderAdmin(ReadOnlyAdmin):
    list_display = (
        "sales_order_number",
        "order_type",
        "case_id",
        "patient_id",
        "created_at",
        "received_at",
        "source",
        timeline_link,
    )
    list_filter = ("order_type", "source")
    search_fields = ("=sales_order_number", "=patient_id", "=case__pk")
    show_full_result_count = False


@admin.register(CaseAsset)
class CaseAssetAdmin(ReadOnlyAdmin):
    list_display = ("pk", "case_id", "kind", "size", "date_created", "date_removed", "source")
    list_filter = ("kind", "source")
    search_fields = ("=case__pk", "=vault_id")
    readonly_fields = ("preview",)
    show_full_result_count = False

    @admin.display(description="Preview")
    def preview(self, obj: CaseAsset) -> str:
        if not obj.file:
            return "-"
        if obj.content_type.startswith("image/"):
            return format_html(
                '<a href="{0}"><img src="{0}" alt="asset {1}" style="max-width:40rem;'
                'border:1px solid #ccc"></a>',
                obj.file.url,
                obj.pk,
            )
        return format_html('<a href="{}">Download</a>', obj.file.url)


@admin.register(AlignCase)
class AlignCaseAdmin(ReadOnlyAdmin):
    list_display = (
        "case_id",
        "patient_id",
        "order_id",
        "assets_uploaded_at",
        "status",
        "treatment_plan_id",
        "treatment_plan_version",
        "awaiting_provider_review",
        timeline_link,
    )
    list_filter = ("awaiting_provider_review", "status")
    search_fields = ("=case__pk", "=patient_id", "=order_id")
    show_full_result_count = False


@admin.register(RemoteOperation)
class RemoteOperationAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "kind",
        "case_id",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "updated_at",
        timeline_link,
    )
    list_filter = ("state", "kind", CaseFilter)
    search_fields = ("=case__pk", "=idempotency_key")
    exclude = ("payload",)  # a revision comment is the provider's text: not shown in lists
    actions = ["retry_now"]
    show_full_result_count = False

    @admin.display(description="Last error")
    def last_error(self, obj: RemoteOperation) -> str:
        # Errors are stored redacted (workflows.timeline.redact): no patient data.
        text = "; ".join(str(error) for error in obj.last_errors or [])
        return text[:120] + ("…" if len(text) > 120 else "")

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[RemoteOperation]) -> None:
        picked = list(queryset.exclude(state=RemoteOperation.SUCCEEDED))
        done, _failed = retry_operations(picked, user=request.user)
        log_action(request, picked, "Retried from the admin.")
        level = messages.SUCCESS if done == len(picked) else messages.WARNING
        self.message_user(request, f"{done} of {len(picked)} operations succeeded.", level)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # "change" here means "may retry"; the form itself stays read-only.
        return obj is None and request.user.has_perm("align_integration.change_remoteoperation")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "payload"]


@admin.register(CallbackEvent)
class CallbackEventAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "event_type",
        "case_reference",
        "state",
        "attempts",
        "error",
        "webhook_id",
    )
    list_filter = ("state", "event_type")
    search_fields = ("=webhook_id", "=case_reference")
    actions = ["reprocess"]
    show_full_result_count = False

    @admin.action(
        description="Reprocess (unmatched: resolve the case again)", permissions=["change"]
    )
    def reprocess(self, request: HttpRequest, queryset: QuerySet[CallbackEvent]) -> None:
        picked = list(queryset.exclude(state=CallbackEvent.PROCESSED))
        done = reprocess(picked)
        log_action(
            request, picked, f"Reprocessed from the admin at {timezone.now():%Y-%m-%d %H:%M}."
        )
        level = messages.SUCCESS if not (done.failed or done.unmatched) else messages.WARNING
        self.message_user(
            request,
            f"{done.processed} processed, {done.failed} failed, "
            f"{done.unmatched} still unmatched (no case answers to their caseId).",
            level,
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.has_perm("align_integration.change_callbackevent")
