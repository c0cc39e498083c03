"""Template tag libraries of the app (``{% load align_integration %}``)."""
