"""The account services: registration, sign-in (password, TOTP, passkeys), sessions,
throttles, recovery, self-service and export, each as one class built by ``wiring``.

May import ``store``, ``crypto`` and ``platform``; never the edge or ``todos``.
"""
