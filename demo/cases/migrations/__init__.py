"""The demo's migrations."""
