"""Management commands of the demo: ``seed_demo``."""
