"""Tests of the iTero lab connector."""
