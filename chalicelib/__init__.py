"""Gatehouse: the services behind app.py's routes (see docs/architecture.md)."""
