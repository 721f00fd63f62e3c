"""The per-user data API: a user's to-do list and its rules (limits, paging, shape).

May import ``store`` and ``platform``; never ``accounts``, ``crypto`` or the edge. A
new per-user data API is a sibling package built the same way.
"""
