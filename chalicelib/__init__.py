"""Gatehouse: the services behind app.py's routes, in layers (see docs/architecture.md).

``wiring`` builds them; ``edge`` is HTTP; ``accounts`` and ``todos`` are the services;
``store`` and ``crypto`` are what the services stand on; ``platform`` is under all of
them. An import may only point down that list; ``make lint`` (import-linter) checks it.
"""
