"""Users for the tests: the app's permissions (CONTRACT §10) and how to grant them."""

from __future__ import annotations

from typing import Any

#: The app's own permissions, on top of ``is_staff``.
STAFF_PERMISSIONS = ("send_to_align", "manage_itero_connection")


def grant(user: Any, *codenames: str) -> Any:
    """Give ``user`` these ``align_integration`` permissions; returns it reloaded (Django
    caches permissions on the instance)."""
    from django.contrib.auth.models import Permission

    permissions = Permission.objects.filter(
        content_type__app_label="align_integration", codename__in=codenames
    )
    assert len(permissions) == len(codenames), codenames
    user.user_permissions.add(*permissions)
    return type(user).objects.get(pk=user.pk)
