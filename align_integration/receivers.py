"""The app's own signal receivers.

``aligners_purchased`` (sent by the host when a customer buys aligners) triggers the
ClinCheck accept, as the old tool's purchase hook did.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from align_integration.signals import aligners_purchased
from align_integration.workflows.clincheck.review import accept_when_aligners_purchased


@receiver(aligners_purchased, dispatch_uid="align_integration.aligners_purchased")
def send_clincheck_accept(sender: Any, case: Any, user: Any = None, **kwargs: Any) -> None:
    accept_when_aligners_purchased(case, user=user, request=kwargs.get("request"))
