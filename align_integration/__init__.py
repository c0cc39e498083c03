"""django-align-integration: the one place a Django project talks to Align Technology.

``Align`` is imported lazily so that ``import align_integration`` works before the app
registry is ready (settings modules, ``INSTALLED_APPS`` scanning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Align", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from align_integration.facade import Align


def __getattr__(name: str) -> Any:
    if name == "Align":
        from align_integration.facade import Align

        return Align
    raise AttributeError(f"module 'align_integration' has no attribute {name!r}")
