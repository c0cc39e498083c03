"""The app's own signal receivers.

``aligners_purchased`` (sent by the host when a customer buys aligners) triggers the
ClinCheck accept, as the old tool's purchase hook did.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from align_integration.signals import aligners_purchased, eligibility_changed
from align_integration.workflows.clincheck.review import accept_when_aligners_purchased
from align_integration.workflows.orders.auto_send import queue_auto_send


@receiver(aligners_purchased, dispatch_uid="align_integration.aligners_purchased")
def send_clincheck_accept(sender: Any, case: Any, user: Any = None, **kwargs: Any) -> None:
    accept_when_aligners_purchased(case, user=user, request=kwargs.get("request"))


@receiver(eligibility_changed, dispatch_uid="align_integration.eligibility_changed")
def queue_case_for_auto_send(sender: Any, case: Any, **kwargs: Any) -> None:
    queue_auto_send(case)
