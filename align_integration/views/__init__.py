"""Thin HTTP entry points: parse, authorise, call a workflow, answer."""
