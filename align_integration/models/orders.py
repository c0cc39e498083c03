"""Sales orders Align sends back (``sales_order.created`` callbacks)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from align_integration.models._case import case_foreign_key


class AlignOrder(models.Model):
    """One sales order record sent back by Align for a case.

    Align sends several per case and type; the newest ``created_at`` (Align's
    ``createdAt``) is the one that counts, whatever order they arrived in.
    """

    PRIMARY = "primary"
    SECONDARY = "secondary"
    ORDER_TYPES = [(PRIMARY, "Primary"), (SECONDARY, "Secondary")]

    case = case_foreign_key("align_orders")
    order_type = models.CharField(max_length=16, choices=ORDER_TYPES)
    sales_order_number = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(
        default=timezone.now, help_text="When Align created the sales order (createdAt)."
    )
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(
        max_length=16, default="callback", help_text="callback, legacy import, or admin"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "order_type", "sales_order_number"],
                name="align_order_unique_per_case_type",
            )
        ]
        indexes = [models.Index(fields=["case", "order_type", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.order_type} sales order {self.sales_order_number}"
