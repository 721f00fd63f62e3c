"""What a signed-in user does to their own account: profile, password, deletion, MFA.

Each action that needs the password again (deletion, turning MFA off, a new password)
re-checks it through ``Login.confirm_password``, throttled like a login; starting a
passkey enrolment also needs the second factor when MFA is on (``Login.step_up``). Each
change is recorded on the account's activity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import errors
from chalicelib.accounts import Accounts
from chalicelib.items import UserRecord
from chalicelib.login import Login
from chalicelib.mfa import Enrolment, Mfa
from chalicelib.passkeys import Passkeys
from chalicelib.recovery import Recovery
from chalicelib.sessions import Device, Sessions
from chalicelib.throttle import Throttle


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
        device: Device,
        base_url: str,
    ) -> UserRecord:
        """Change email and/or display name; a new email gets a verification message."""
        before = self._accounts.get(user_id)
        after = self._accounts.update_profile(user_id, email=email, display_name=display_name)
        if after.email_key != before.email_key:
            self._event(after, "email_change", device)
            self._recovery.send_verification(after, base_url)
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

    def enrol_totp(self, user_id: str) -> Enrolment:
        return self._mfa.enrol(self._accounts.get(user_id))

    def confirm_totp(self, user_id: str, code: str, device: Device) -> list[str]:
        """Turn MFA on with a first valid code; wrong codes are throttled like logins."""
        user = self._accounts.get(user_id)
        checked = self._throttle.check(
            self._throttle.counters(account=user.username_key, ip=device.ip)
        )
        codes = self._mfa.confirm(user, code)
        if codes is None:
            self._throttle.fail(checked)
            raise errors.ValidationError.of_field(
                "code", "invalid_code", "The code does not match."
            )
        self._event(user, "mfa_enabled", device)
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
