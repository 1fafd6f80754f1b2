"""Helpers for the test suite: real peers as child processes, the portal under gunicorn."""
