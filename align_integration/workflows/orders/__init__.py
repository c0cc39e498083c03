"""Sending a case to Align: the order flow (``flow``) and its upload step (``uploads``)."""

from align_integration.workflows.orders.flow import align_state, initiate_align_order
from align_integration.workflows.orders.uploads import upload_case_assets

__all__ = ["align_state", "initiate_align_order", "upload_case_assets"]
