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
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from align_integration.cases import asset_download_url
from align_integration.models import (
    AlignCase,
    AlignOrder,
    CallbackEvent,
    CaseAsset,
    CaseEvent,
    RemoteOperation,
)
from align_integration.models.assets import safe_content_type
from align_integration.outbound import OutboundPaused
from align_integration.worker import retry_operations
from align_integration.workflows.callbacks.events import reprocess


class SafeChangeList(ChangeList):
    """A query string that cannot be a filter (a date out of range, a word for a number…)
    makes the admin show the unfiltered list with its "invalid lookup" flag, as Django does
    for the lookups it checks itself, instead of failing with a 500."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        try:
            return super().get_queryset(request, exclude_parameters)
        except (ValueError, TypeError, OverflowError, ValidationError) as error:
            raise IncorrectLookupParameters(error) from error


def query_string_problem(request: HttpRequest) -> str | None:
    """Why the query string cannot reach the database, if it cannot (PostgreSQL refuses NUL)."""
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return "The query string holds a NUL character."
    return None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are for reading: no add, no edit, no delete.

    Also the guard of every admin page of the app against hostile query strings: a filter
    value is checked by its filter (``problem_with``) and answered 400 with the reason; any
    other lookup that cannot apply falls back to the unfiltered list (:class:`SafeChangeList`).
    """

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SafeChangeList

    def query_problem(self, request: HttpRequest) -> str | None:
        problem = query_string_problem(request)
        if problem is not None:
            return problem
        for list_filter in self.list_filter:
            check = getattr(list_filter, "problem_with", None)
            value = request.GET.get(getattr(list_filter, "parameter_name", "") or "")
            if check is not None and value is not None:
                problem = check(value)
                if problem is not None:
                    return problem
        return None

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        problem = self.query_problem(request)
        if problem is not None:
            return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
        return super().changelist_view(request, extra_context)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        problem = query_string_problem(request)
        if problem is not None or "\x00" in (object_id or ""):
            return HttpResponseBadRequest(
                problem or "The object id holds a NUL character.",
                content_type="text/plain; charset=utf-8",
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperatingAdmin(ReadOnlyAdmin):
    """Read-only rows with actions ("Retry now", "Reprocess"…): the model's "change"
    permission means "may run the actions"; no form ever saves."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        codename = get_permission_codename("change", self.opts)
        return obj is None and request.user.has_perm(f"{self.opts.app_label}.{codename}")


#: The vendor's redacted error text: support material that only superusers see.
VENDOR_DETAIL = "vendor_detail"


def log_action(request: HttpRequest, objects: list[Any], message: str) -> None:
    """One admin log entry per object acted on (``log_actions``: Django 5.1+)."""
    user_id = request.user.pk
    if not objects or user_id is None:
        return
    LogEntry.objects.log_actions(
        user_id=user_id, queryset=objects, action_flag=CHANGE, change_message=message
    )


def timeline_url(case_pk: Any) -> str:
    return f"{reverse('admin:align_integration_caseevent_changelist')}?case={case_pk}"


@admin.display(description="Timeline")
def timeline_link(obj: Any) -> str:
    return format_html('<a href="{}">timeline</a>', timeline_url(obj.case_id))


def case_pk_field() -> Any:
    """The host case model's primary key field (the type a ``?case=`` value must have)."""
    return CaseEvent._meta.get_field("case").target_field


class CaseFilter(admin.SimpleListFilter):
    """``?case=<pk>``: one case's entries.  The sidebar shows only the case chosen (cases are
    too many to list), with "All" to clear it.  A value that cannot be a case's primary key
    is refused (400) before any query."""

    title = "case"
    parameter_name = "case"

    @staticmethod
    def problem_with(value: str) -> str | None:
        if not value:
            return None
        try:
            case_pk_field().to_python(value)
        except (ValidationError, ValueError, TypeError, OverflowError):
            return "case: not a valid case id."
        return None

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = request.GET.get(self.parameter_name)
        return [(value, f"Case {value}")] if value and not self.problem_with(value) else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if self.problem_with(value):  # reached only if a host bypasses ReadOnlyAdmin's check
            raise IncorrectLookupParameters("case: not a valid case id")
        return queryset.filter(case_id=case_pk_field().to_python(value))


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
        if case and not CaseFilter.problem_with(case) and not query_string_problem(request):
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
    # The file field itself would render a link to the storage's URL: shown as text instead.
    exclude = ("file",)
    readonly_fields = ("stored_file", "preview")
    show_full_result_count = False

    @admin.display(description="File")
    def stored_file(self, obj: CaseAsset) -> str:
        return obj.file.name or "-"

    @admin.display(description="Preview")
    def preview(self, obj: CaseAsset) -> str:
        """Through the authenticated download view, never the storage's own URL."""
        if not obj.file:
            return "-"
        try:
            url = asset_download_url(obj)
        except NoReverseMatch:  # the host did not include the app's URLs
            return "-"
        if safe_content_type(obj.file.name or "").startswith("image/"):
            return format_html(
                '<a href="{0}"><img src="{0}" alt="asset {1}" style="max-width:40rem;'
                'border:1px solid #ccc"></a>',
                url,
                obj.pk,
            )
        return format_html('<a href="{}">Download</a>', url)


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
class RemoteOperationAdmin(OperatingAdmin):
    list_display = (
        "pk",
        "kind",
        "case_id",
        "state",
        "attempts",
        "last_status_code",
        "last_error_code",
        "last_error",
        "next_attempt_at",
        "updated_at",
        timeline_link,
    )
    list_filter = ("state", "kind", "last_error_code", CaseFilter)
    search_fields = ("=case__pk", "=idempotency_key")
    # A revision comment is the provider's text: not shown.  The vendor's own error text
    # (redacted) is for superusers only: see get_exclude.
    exclude = ("payload",)
    actions = ["retry_now"]
    show_full_result_count = False

    @admin.display(description="Last error")
    def last_error(self, obj: RemoteOperation) -> str:
        # The app's own summary (workflows.errors): status, code, count; never vendor text.
        text = "; ".join(str(error) for error in obj.last_errors or [])
        return text[:120] + ("…" if len(text) > 120 else "")

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[RemoteOperation]) -> None:
        picked = list(queryset.exclude(state=RemoteOperation.SUCCEEDED))
        try:
            done, _failed = retry_operations(picked, user=request.user)
        except OutboundPaused as paused:
            self.message_user(request, str(paused), messages.ERROR)
            return
        log_action(request, picked, "Retried from the admin.")
        level = messages.SUCCESS if done == len(picked) else messages.WARNING
        self.message_user(request, f"{done} of {len(picked)} operations succeeded.", level)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        hidden = ["payload"]
        if not request.user.is_superuser:
            hidden.append(VENDOR_DETAIL)
        return hidden

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        hidden = self.get_exclude(request, obj)
        return [f.name for f in self.model._meta.fields if f.name not in hidden]


@admin.register(CallbackEvent)
class CallbackEventAdmin(OperatingAdmin):
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
