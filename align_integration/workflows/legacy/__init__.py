"""Importing the old in-repo tool's records: ``sources`` reads its tables or CSV exports,
``importer`` writes them as this app's rows."""
