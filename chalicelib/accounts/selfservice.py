"""What a signed-in user does to their own account: profile, password, deletion, MFA.

An access token alone is 15 minutes of access, not the account: whatever would let its
thief keep the account (a new email, which then receives the reset links; a second
factor of their own; a passkey) needs the password again, and the second factor when
MFA is on (``Login.step_up``), throttled like a login. Deletion, turning MFA off and a
new password re-check the password. Each change is recorded on the account's activity;
an email change also tells the old address, and is limited per IP (``register``) and
per account and recipient (``mail``), so it is neither a free "is this address taken?"
oracle nor a way to flood an inbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.accounts import identity
from chalicelib.accounts.login import Login
from chalicelib.accounts.mfa import Enrolment, Mfa
from chalicelib.accounts.passkeys import Passkeys
from chalicelib.accounts.recovery import Recovery
from chalicelib.accounts.sessions import Device, Sessions
from chalicelib.accounts.throttle import Throttle
from chalicelib.accounts.users import Accounts
from chalicelib.platform import errors
from chalicelib.store.items import UserRecord


@dataclass(frozen=True)
class StepUp:
    """What a request offers to prove it is the owner, not only a token's holder."""

    password: str | None = None
    code: str | None = None


class SelfService:
    def __init__(
        self,
        accounts: Accounts,
        login: Login,
        sessions: Sessions,
        mfa: Mfa,
        *,
        recovery: Recovery,
        throttle: Throttle,
        passkeys: Passkeys,
        clock: Callable[[], float],
    ) -> None:
        self._accounts = accounts
        self._login = login
        self._sessions = sessions
        self._mfa = mfa
        self._recovery = recovery
        self._throttle = throttle
        self._passkeys = passkeys
        self._clock = clock

    def _event(self, user: UserRecord, kind: str, device: Device, outcome: str = "success") -> None:
        self._accounts.record(device.event(user.id, kind, outcome, self._clock()))

    def update_profile(
        self,
        user_id: str,
        *,
        email: str | None,
        display_name: str | None,
        step_up: StepUp,
        device: Device,
    ) -> UserRecord:
        """Change the display name and/or, after the step-up, the email; a new address
        gets a verification message and the old one a notice."""
        before = self._accounts.get(user_id)
        if email is not None:
            new_key = identity.email_key(identity.check_email(email))
            if not step_up.password:
                raise errors.ValidationError.of_field(
                    "password", "required", "Changing the email needs the password."
                )
            self._throttle.claim(self._throttle.counters(register=device.ip))
            self._login.step_up(before, step_up.password, step_up.code, device)
            # Claimed once the owner is proven: wrong passwords cost no one's mail.
            self._throttle.claim(self._recovery.mail_counters(user_id, new_key, before.email_key))
        after = self._accounts.update_profile(user_id, email=email, display_name=display_name)
        if after.email != before.email:
            self._event(after, "email_change", device)
            self._recovery.send_verification(after, claimed=True)
            self._recovery.notify_email_change(before, after, device)
        return after

    def change_password(
        self, user_id: str, session_id: str, current: str, new: str, device: Device
    ) -> None:
        """A new password; every session but the caller's ends (NIST 800-63B 6.1.2.3)."""
        user = self._accounts.get(user_id)
        self._login.confirm_password(user, current, device)
        self._accounts.change_password(user, new)
        self._sessions.end_others(user_id, keep=session_id)
        self._event(user, "password_change", device)

    def delete(self, user_id: str, password: str, device: Device) -> None:
        user = self._accounts.get(user_id)
        self._login.confirm_password(user, password, device)
        self._accounts.delete(user)

    def enrol_totp(self, user_id: str, password: str, device: Device) -> Enrolment:
        """A pending TOTP secret, after the password: a stolen access token must not
        add its thief's own second factor (409 first if MFA is on already)."""
        user = self._accounts.get(user_id)
        if user.mfa_enabled:
            raise errors.MfaAlreadyEnabled()
        self._login.confirm_password(user, password, device)
        return self._mfa.enrol(user)

    def confirm_totp(self, user_id: str, code: str, device: Device) -> list[str]:
        """Turn MFA on with a first valid code; wrong codes are throttled like logins."""
        user = self._accounts.get(user_id)
        claim = self._throttle.claim(
            self._throttle.counters(account=user.username_key, ip=device.ip)
        )
        codes = self._mfa.confirm(user, code)
        if codes is None:  # the claim stays: a wrong code counts
            raise errors.ValidationError.of_field(
                "code", "invalid_code", "The code does not match."
            )
        self._throttle.give_back(
            claim, event=device.event(user.id, "mfa_enabled", "success", self._clock())
        )
        return codes

    def disable_totp(self, user_id: str, password: str, device: Device) -> None:
        user = self._accounts.get(user_id)
        self._login.confirm_password(user, password, device)
        self._mfa.disable(user)
        self._event(user, "mfa_disabled", device)

    def passkey_options(
        self, user_id: str, password: str, code: str | None, device: Device
    ) -> dict[str, Any]:
        """Creation options for a new passkey, after the step-up (password, and the
        second factor when MFA is on), which runs only if the user has room for one."""
        user = self._accounts.get(user_id)
        return self._passkeys.creation_options(
            user, lambda: self._login.step_up(user, password, code, device)
        )
