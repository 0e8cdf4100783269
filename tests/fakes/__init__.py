"""Fake upstream servers used by the end-to-end tests."""
