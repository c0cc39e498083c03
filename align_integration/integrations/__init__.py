"""Optional adapters to other frameworks: ``celery`` (``pip install
django-align-integration[celery]``)."""
