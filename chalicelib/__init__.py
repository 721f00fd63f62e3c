"""Gatehouse: the services behind app.py's routes (see README, "Architecture")."""
