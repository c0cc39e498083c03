"""iTero lab connector endpoints (being built)."""

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound


def _not_built(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return HttpResponseNotFound("The iTero connector is not configured.")


receive_notification = connect = oauth_callback = pair = unpair = connection_status = _not_built
