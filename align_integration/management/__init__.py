"""Management commands of the Align integration (``align_*``)."""
