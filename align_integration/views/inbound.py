"""One base for the endpoints vendors call: Align's callbacks and iTero's scan notifications.

Modelled on django-anymail's webhook base view.  :class:`InboundView` is csrf-exempt and
login-not-required (a host running ``LoginRequiredMiddleware`` still receives its vendor
calls).  A request goes through the subclass's validators, then its :meth:`handle`; a
failure is a typed exception (:class:`BadRequest`, :class:`PayloadTooLarge`, …) that one
place maps to its status.  ``SuspiciousOperation`` is a 400.  Bodies are read by one
size-capped reader.

Anything else that goes wrong is caught here too: logged as one
``<name> outcome=error error=<class> at=<file:line>`` line, answered 500, and marked as
logged, so that ``django.request`` never writes the request path (it can carry a secret,
such as the notification token) nor a traceback holding request data.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from align_integration import telemetry

Validator = Callable[[HttpRequest], None]


class InboundRejected(Exception):
    """The request is refused; ``reason`` says why (our own words, never request data)."""

    status: ClassVar[int] = 400
    outcome: ClassVar[str] = "rejected"

    def __init__(self, reason: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.headers = dict(headers or {})


class BadRequest(InboundRejected):
    status = 400
    outcome = "bad_request"


class Unauthorized(InboundRejected):
    """Credentials are missing (e.g. no signature headers)."""

    status = 401
    outcome = "unauthorized"


class Forbidden(InboundRejected):
    """Credentials are present but wrong (e.g. a bad signature or a stale timestamp)."""

    status = 403
    outcome = "forbidden"


class NotFound(InboundRejected):
    status = 404
    outcome = "not_found"


class MethodNotAllowed(InboundRejected):
    status = 405
    outcome = "bad_method"


class PayloadTooLarge(InboundRejected):
    status = 413
    outcome = "too_large"


class Unavailable(InboundRejected):
    """We cannot take the request now; ``Retry-After`` says when to come back."""

    status = 503
    outcome = "unavailable"


class Answered(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A validator already knows the answer (e.g. a redelivery of a stored event)."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a body
    longer than it declares is cut off at ``limit + 1`` bytes and refused too.
    """
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        declared = int(raw)
    except ValueError:
        raise BadRequest("invalid Content-Length") from None
    if declared < 0:
        raise BadRequest("invalid Content-Length")
    if declared > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    return body


def _where(error: BaseException) -> str:
    """``file.py:line`` of the innermost frame: enough to find the bug, no request data."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "-"
    frame = frames[-1]
    return f"{os.path.basename(frame.filename)}:{frame.lineno}"


class InboundView(View):
    """Base of an inbound endpoint.  Override :meth:`get_validators` and :meth:`handle`.

    Validators run in order and raise an :class:`InboundRejected` to refuse (or
    :class:`Answered` when they already know the answer); they may keep what they parsed
    on ``self``.  :meth:`handle` returns the answer (use :meth:`answer`).
    :meth:`rejection` shapes the body of a refusal; override it for another wire format.
    """

    #: The word that starts every log line of this endpoint (``callback``, ``itero_notification``).
    log_name: ClassVar[str] = "inbound"
    logger: ClassVar[logging.Logger] = logging.getLogger("align_integration")
    #: The telemetry span of the request being answered (``None`` without the ``otel`` extra).
    traced: Any = None
    #: Methods accepted; anything else is refused by :meth:`check_method` with 405.
    allowed_methods: ClassVar[tuple[str, ...]] = ("POST",)

    @classmethod
    def as_endpoint(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        """The view function for ``urls.py``: csrf-exempt, no login required."""
        return login_not_required(csrf_exempt(cls.as_view(**initkwargs)))

    def get_validators(self) -> Sequence[Validator]:
        return [self.check_method]

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    # -- the pipeline ---------------------------------------------------------------------
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with telemetry.span(f"align.{self.log_name}") as self.traced:
            try:
                for validate in self.get_validators():
                    validate(request)
                response = self.handle(request)
            except Answered as answered:
                response = answered.response
            except InboundRejected as rejected:
                response = self.refuse(rejected)
            except SuspiciousOperation:
                response = self.refuse(BadRequest("the request is malformed"))
            except Exception as error:  # our fault: one line, no path, no request data
                self.logger.error(
                    "%s outcome=error error=%s at=%s",
                    self.log_name,
                    type(error).__name__,
                    _where(error),
                )
                telemetry.set_attribute(self.traced, "outcome", "error")
                response = self.failure()
            telemetry.set_attribute(self.traced, "status", response.status_code)
        # Django's request logger would write the path (it can hold a secret): we log here.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response

    def check_method(self, request: HttpRequest) -> None:
        if request.method not in self.allowed_methods:
            raise MethodNotAllowed(
                f"{' or '.join(self.allowed_methods)} only",
                headers={"Allow": ", ".join(self.allowed_methods)},
            )

    def read_body(self, request: HttpRequest, limit: int) -> bytes:
        return read_body(request, limit)

    # -- answers --------------------------------------------------------------------------
    def answer(self, payload: dict[str, Any], status: int, outcome: str) -> JsonResponse:
        """A JSON answer, logged as ``<name> status=<status> outcome=<outcome>``."""
        self.logger.info("%s status=%d outcome=%s", self.log_name, status, outcome)
        telemetry.set_attribute(self.traced, "outcome", outcome)
        return JsonResponse(payload, status=status)

    def refuse(self, rejected: InboundRejected) -> HttpResponse:
        telemetry.set_attribute(self.traced, "outcome", rejected.outcome)
        self.logger.info(
            "%s status=%d outcome=%s reason=%s",
            self.log_name,
            rejected.status,
            rejected.outcome,
            rejected.reason,
        )
        response = self.rejection(rejected)
        for name, value in rejected.headers.items():
            response[name] = value
        return response

    def rejection(self, rejected: InboundRejected) -> HttpResponse:
        return JsonResponse({"ok": False, "error": rejected.reason}, status=rejected.status)

    def failure(self) -> HttpResponse:
        return JsonResponse({"ok": False, "error": "internal error on our side"}, status=500)
