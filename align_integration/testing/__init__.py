"""The test kit for host projects, shipped in the wheel as django-waffle ships ``testutils``.

- :class:`Sandbox` (``align_integration.testing.sandbox``): a stand-in for Align's
  integration service and iTero's lab API; ``python -m align_integration.testing.sandbox``.
- The pytest plugin (``align_integration.testing.pytest_plugin``, entry point
  ``align_integration``) with the ``align_sandbox`` fixture.
- Settings: :func:`sandbox_settings`, :class:`use_sandbox`, :class:`override_align_settings`.
- Callbacks: :func:`post_callback`, :func:`signed_headers`, :func:`post_signed`.
- :class:`CallbackReceiver`: a stand-in for the host's inbound endpoints.

Nothing in the app itself imports this package.
"""

from .callbacks import post_callback, post_signed, signed_headers
from .receiver import CallbackReceiver, Delivery
from .sandbox import Sandbox
from .settings import override_align_settings, sandbox_settings, use_sandbox

__all__ = [
    "CallbackReceiver",
    "Delivery",
    "Sandbox",
    "override_align_settings",
    "post_callback",
    "post_signed",
    "sandbox_settings",
    "signed_headers",
    "use_sandbox",
]
