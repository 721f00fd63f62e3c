"""Registration as a client meets it: a per-IP limit, the account, its first mail.

Every registration answers whether a username or email is taken (201 or 409), so each
attempt is claimed on the client IP's ``register`` limit first, like an email change:
neither is a free yes/no oracle. The verification message counts against the address's
mail limit; an address that has had its share this hour gets none now (the account is
still created, and ``POST /me/email/verification`` asks again later).
"""

from __future__ import annotations

import logging

from chalicelib.accounts.recovery import Recovery
from chalicelib.accounts.sessions import Device
from chalicelib.accounts.throttle import Throttle
from chalicelib.accounts.users import Accounts, Registration
from chalicelib.platform import errors
from chalicelib.store.items import UserRecord

_log = logging.getLogger("gatehouse")


class Signup:
    def __init__(self, accounts: Accounts, throttle: Throttle, recovery: Recovery) -> None:
        self._accounts = accounts
        self._throttle = throttle
        self._recovery = recovery

    def register(self, form: Registration, device: Device) -> UserRecord:
        """Create the account and mail its verification link; 429 past the IP's limit."""
        self._throttle.claim(self._throttle.counters(register=device.ip))
        user = self._accounts.register(form)
        try:
            self._recovery.send_verification(user)
        except errors.TooManyAttempts:
            _log.warning("VerificationMailHeld", extra={"fields": {"user_id": user.id}})
        return user
