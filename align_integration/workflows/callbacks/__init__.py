"""Callbacks from the Align integration service: parsing, storing and applying events."""
