"""The app's tables.  Each concept lives in its own module; import them from here."""

from align_integration.models.assets import CaseAsset
from align_integration.models.callbacks import CallbackEvent
from align_integration.models.cases import AlignCase
from align_integration.models.events import CaseEvent
from align_integration.models.itero import IteroConnection, IteroNotification, IteroScan
from align_integration.models.operations import RemoteOperation
from align_integration.models.orders import AlignOrder

__all__ = [
    "AlignCase",
    "AlignOrder",
    "CallbackEvent",
    "CaseAsset",
    "CaseEvent",
    "IteroConnection",
    "IteroNotification",
    "IteroScan",
    "RemoteOperation",
]
