"""The local demo: every upstream simulated, the portal in demo mode on http://127.0.0.1:8000."""
