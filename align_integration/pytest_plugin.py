"""Alias of :mod:`align_integration.testing.pytest_plugin` for installs whose entry point
still names this module, and for ``pytest_plugins = ["align_integration.pytest_plugin"]``."""

from align_integration.testing.pytest_plugin import *  # noqa: F403
