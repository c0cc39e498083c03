"""The test kit for host projects, shipped in the wheel as django-waffle ships ``testutils``.

``align_integration.testing.sandbox`` stands in for Align's integration service and iTero's
lab API; ``align_integration.testing.pytest_plugin`` (entry point ``align_integration``)
gives the ``align_sandbox`` fixture. Nothing in the app itself imports this package.
"""
