"""The demo host project: a small Django site that installs ``align_integration``."""
