"""Login: throttle, password, second factor, session, in that order.

1. ``Throttle.check`` (one BatchGetItem): a locked account name or client IP is refused
   with 429 before any lookup or bcrypt work.
2. The user is looked up by username or email; an unknown login still costs the same
   round trips and the same bcrypt time, and fails the same way.
3. A failure (wrong password, disabled account, wrong code) counts against the account
   name and the IP, and is recorded on the account's activity when there is one.
4. With MFA on, a correct password and no code is ``mfa_required``; a TOTP code or a
   recovery code is spent in the same transaction that opens the session, so it cannot
   be replayed. A passkey assertion (``passkey``) may stand in for the code: its sign
   count moves in that same transaction (passkeys.py).
5. That transaction also requires the password hash the login verified: a login that
   read the old password just before a change or reset loses to it with
   ``invalid_credentials``. That loss is not counted against the throttle, since the
   password was right when it was checked; it was the caller's own (or an owner's)
   change that overtook it, not a guess.

Four DynamoDB round trips on success: counters, guard, user, one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from chalicelib import errors
from chalicelib.accounts import Accounts
from chalicelib.items import SecondFactor, UserRecord
from chalicelib.mfa import Totp
from chalicelib.passkeys import Passkeys
from chalicelib.passwords import PasswordHasher
from chalicelib.sessions import NO_SECOND_FACTOR, Device, Sessions
from chalicelib.throttle import Checked, Throttle


class Login:
    def __init__(
        self,
        accounts: Accounts,
        hasher: PasswordHasher,
        throttle: Throttle,
        *,
        totp: Totp,
        sessions: Sessions,
        passkeys: Passkeys,
        clock: Callable[[], float],
    ) -> None:
        self._accounts = accounts
        self._hasher = hasher
        self._throttle = throttle
        self._totp = totp
        self._sessions = sessions
        self._passkeys = passkeys
        self._clock = clock

    def login(
        self,
        login: str,
        password: str,
        totp_code: str | None,
        device: Device,
        passkey: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The TokenPair of a new session, or ``InvalidCredentials``/``MfaRequired``/429."""
        if passkey is not None and totp_code:
            raise errors.ValidationError.of_field(
                "passkey", "conflict", "Send a totp_code or a passkey, not both."
            )
        checked = self._throttle.check(
            self._throttle.counters(account=self._accounts.login_key(login), ip=device.ip)
        )
        user = self._accounts.lookup(login)
        if user is None:
            self._hasher.verify_dummy()
            self._fail(checked, None, device)
        elif not self._hasher.verify(password, user.password_hash) or user.disabled:
            self._fail(checked, user, device)
        factor, use = NO_SECOND_FACTOR, None
        if user.mfa_enabled and passkey is not None:
            use = self._passkeys.second_factor(user, passkey, device)
            if use is None:
                self._fail(checked, user, device)
        elif user.mfa_enabled:
            factor = self._second_factor(user, totp_code, checked, device)
        return self._sessions.start(
            user,
            device,
            factor=factor,
            clear=checked.account_keys,
            passkey=use,
            password_hash=user.password_hash,
        )

    def _second_factor(
        self,
        user: UserRecord,
        code: str | None,
        checked: Checked,
        device: Device,
        kind: str = "login",
    ) -> SecondFactor:
        if not code:
            self._event(user, kind, "mfa_required", device)
            raise errors.MfaRequired()
        factor = self._totp.second_factor(user, code)
        if factor is None:
            self._fail(checked, user, device, kind)
        return factor

    def confirm_password(self, user: UserRecord, password: str, device: Device) -> Checked:
        """Re-check a signed-in user's password (account changes), throttled like login."""
        checked = self._throttle.check(
            self._throttle.counters(account=user.username_key, ip=device.ip)
        )
        if not self._hasher.verify(password, user.password_hash):
            self._fail(checked, user, device, kind="password_check")
        return checked

    def step_up(self, user: UserRecord, password: str, code: str | None, device: Device) -> None:
        """The password again and, with MFA on, a TOTP or recovery code too (spent, so
        it cannot be used twice), before a change as strong as a new passkey."""
        checked = self.confirm_password(user, password, device)
        if user.mfa_enabled:
            factor = self._second_factor(user, code, checked, device, kind="password_check")
            if not self._accounts.spend_factor(user.id, factor):
                self._fail(checked, user, device, kind="password_check")

    def _fail(
        self, checked: Checked, user: UserRecord | None, device: Device, kind: str = "login"
    ) -> NoReturn:
        event = None
        if user is not None:
            outcome = "throttled" if checked.tips_over() else "failure"
            event = device.event(user.id, kind, outcome, self._clock())
        self._throttle.fail(checked, event)
        raise errors.InvalidCredentials()

    def _event(self, user: UserRecord, kind: str, outcome: str, device: Device) -> None:
        self._accounts.record(device.event(user.id, kind, outcome, self._clock()))
