"""Login: throttle, password, second factor, session, in that order.

1. ``Throttle.claim`` (one transaction): the attempt is counted against the account name
   and the client IP before any lookup or bcrypt work, on the condition that both are
   below their limits, so parallel guesses cannot outrun the limit; a full one is 429.
2. The user is looked up by username or email; an unknown login still costs the same
   round trips and the same bcrypt time, and fails the same way (its event write is a
   transaction whose user check fails, so it writes nothing, in the same round trip).
3. A failure (wrong password, disabled account, wrong code) stays counted, and is
   recorded on the account's activity when there is one.
4. With MFA on, a correct password and no code is ``mfa_required`` (the attempt is given
   back: no guess was wrong); a TOTP code or a recovery code is spent in the same
   transaction that opens the session, so it cannot be replayed. A passkey assertion
   (``passkey``) may stand in for the code: its sign count moves in that same
   transaction (passkeys.py).
5. That transaction also clears the account's counters, gives the attempt back on the
   IP's, and requires the password hash the login verified: a login that read the old
   password just before a change or reset loses to it with ``invalid_credentials``.
   That loss is given back too, since the password was right when it was checked; it
   was the caller's own (or an owner's) change that overtook it, not a guess.

Four DynamoDB round trips on success: the claim, guard, user, one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from chalicelib.accounts.mfa import Totp
from chalicelib.accounts.passkeys import Passkeys
from chalicelib.accounts.sessions import NO_SECOND_FACTOR, Device, Sessions
from chalicelib.accounts.throttle import Claim, Throttle
from chalicelib.accounts.users import NO_USER, Accounts
from chalicelib.crypto.passwords import PasswordHasher
from chalicelib.platform import errors
from chalicelib.store.items import SecondFactor, UserRecord


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
        claim = self._throttle.claim(
            self._throttle.counters(account=self._accounts.login_key(login), ip=device.ip)
        )
        user = self._accounts.lookup(login)
        if user is None:
            self._hasher.verify_dummy()
            self._fail(claim, None, device)
        elif not self._hasher.verify(password, user.password_hash) or user.disabled:
            self._fail(claim, user, device)
        factor, use = NO_SECOND_FACTOR, None
        if user.mfa_enabled and passkey is not None:
            use = self._passkeys.second_factor(user, passkey, device)
            if use is None:
                self._fail(claim, user, device)
        elif user.mfa_enabled:
            factor = self._second_factor(user, totp_code, claim, device)
        try:
            return self._sessions.start(
                user,
                device,
                factor=factor,
                clear=claim.account_keys,
                passkey=use,
                password_hash=user.password_hash,
                give_back=claim.given_back(but=claim.account_keys),
            )
        except errors.InvalidCredentials:  # overtaken by a change: not a guess
            self._throttle.give_back(claim)
            raise

    def _second_factor(
        self,
        user: UserRecord,
        code: str | None,
        claim: Claim,
        device: Device,
        kind: str = "login",
    ) -> SecondFactor:
        if not code:
            event = device.event(user.id, kind, "mfa_required", self._clock())
            self._throttle.give_back(claim, event=event)
            raise errors.MfaRequired()
        factor = self._totp.second_factor(user, code)
        if factor is None:
            self._fail(claim, user, device, kind)
        return factor

    def confirm_password(self, user: UserRecord, password: str, device: Device) -> None:
        """Re-check a signed-in user's password (account changes), throttled like login."""
        self.step_up(user, password, None, device, second_factor=False)

    def step_up(
        self,
        user: UserRecord,
        password: str,
        code: str | None,
        device: Device,
        *,
        second_factor: bool = True,
    ) -> None:
        """The password again and, with MFA on (unless ``second_factor`` is off), a TOTP
        or recovery code too (spent, so it cannot be used twice), before a change that
        a stolen access token must not make alone. One claim covers both checks; it is
        given back once they pass, so a user's own changes never lock them out."""
        claim = self._throttle.claim(
            self._throttle.counters(account=user.username_key, ip=device.ip)
        )
        kind = "password_check"
        if not self._hasher.verify(password, user.password_hash):
            self._fail(claim, user, device, kind)
        if second_factor and user.mfa_enabled:
            factor = self._second_factor(user, code, claim, device, kind)
            if not self._accounts.spend_factor(user.id, factor):
                self._fail(claim, user, device, kind)
        self._throttle.give_back(claim)

    def _fail(
        self, claim: Claim, user: UserRecord | None, device: Device, kind: str = "login"
    ) -> NoReturn:
        """The attempt stays counted; record it on the user's activity. For an unknown
        user the same write runs against no user item, whose check fails: nothing is
        written, in the same round trip, so the failure takes the same time either way."""
        outcome = "throttled" if claim.last else "failure"
        owner = user.id if user is not None else NO_USER
        self._accounts.record(device.event(owner, kind, outcome, self._clock()))
        raise errors.InvalidCredentials()
