"""Email flows: forgotten password, reset, and email verification.

Tokens are 256 random bits sent by mail and stored only as their SHA-256, with a short
TTL; each is spent by one conditional delete, so it works once even under races.

``forgot`` answers the same way whether or not the email belongs to an account, and
takes the same time: the unknown path waits until the known path's usual duration
(a floor, ``forgot_floor_seconds``) has passed, so neither the answer nor its timing
tells an attacker which emails are registered. Throttled per email and per IP.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib import errors, identity
from chalicelib.accounts import Accounts
from chalicelib.items import OneTimeRecord, UserRecord
from chalicelib.mail import Mailer, Message
from chalicelib.passwords import PasswordPolicy
from chalicelib.sessions import Device
from chalicelib.store import Store
from chalicelib.throttle import Throttle

RESET = "reset"
VERIFY = "verify"


@dataclass(frozen=True)
class RecoveryTimes:
    reset_token_seconds: int = 30 * 60
    verify_token_seconds: int = 24 * 3600
    forgot_floor_seconds: float = 0.3


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Recovery:
    def __init__(
        self,
        store: Store,
        accounts: Accounts,
        policy: PasswordPolicy,
        throttle: Throttle,
        *,
        mailer: Mailer,
        clock: Callable[[], float],
        times: RecoveryTimes,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._policy = policy
        self._throttle = throttle
        self._mailer = mailer
        self._clock = clock
        self._times = times

    def _issue(self, purpose: str, user: UserRecord, lifetime: int) -> str:
        token = secrets.token_urlsafe(32)
        record = OneTimeRecord(
            purpose=purpose,
            user_id=user.id,
            email_key=user.email_key or "",
            expires_at=int(self._clock()) + lifetime,
        )
        self._store.put_one_time(_hash(token), record)
        return token

    def forgot(self, email: str, device: Device, base_url: str) -> None:
        """Mail a reset link if ``email`` is an account's; the same answer either way."""
        started = time.monotonic()
        key = identity.email_key(email)
        checked = self._throttle.check(self._throttle.counters(forgot=key, ip=device.ip))
        self._throttle.fail(checked)  # every request counts, not only failures
        user = self._accounts.lookup(email) if "@" in email else None
        if user is not None and user.email and not user.disabled:
            token = self._issue(RESET, user, self._times.reset_token_seconds)
            minutes = self._times.reset_token_seconds // 60
            self._mailer.send(
                Message(
                    to=user.email,
                    subject="Reset your Gatehouse password",
                    text=(
                        f"Someone asked to reset the password of {user.username}.\n\n"
                        f"Open {base_url}/#reset={token}\n"
                        f"or send this token to POST /password/reset: {token}\n\n"
                        f"It works once, for {minutes} minutes. "
                        "If it was not you, ignore this message."
                    ),
                )
            )
        remaining = self._times.forgot_floor_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)

    def reset(self, token: str, new_password: str, device: Device) -> None:
        """Set a new password with a reset token; every session of the user ends."""
        checked = self._throttle.check(self._throttle.counters(ip=device.ip))
        record = self._store.peek_one_time(_hash(token))
        user = None
        # An expired token stays readable until TTL reaps it; and a link mailed to an
        # address the account no longer has proves nothing.
        if record and record.purpose == RESET and record.expires_at > int(self._clock()):
            user = self._store.get_user(record.user_id)
        if user is None or record is None or user.email_key != record.email_key:
            self._throttle.fail(checked)
            raise errors.InvalidToken("The reset token is invalid or expired.")
        # Check the policy before spending the token, so a weak choice can be retried.
        self._policy.check(new_password, username=user.username, email=user.email)
        if self._store.take_one_time(_hash(token), RESET, int(self._clock())) is None:
            self._throttle.fail(checked)
            raise errors.InvalidToken("The reset token is invalid or expired.")
        self._accounts.change_password(user, new_password)
        self._store.delete_sessions(user.id)
        # Whoever holds the reset link owns the account: lift its login lockout.
        self._throttle.clear(self._throttle.owner_counters(user))
        self._event(user.id, "password_reset", device)

    def send_verification(self, user: UserRecord, base_url: str) -> None:
        """Mail a verification link to the user's unverified email (else do nothing)."""
        if not user.email or user.email_verified:
            return
        token = self._issue(VERIFY, user, self._times.verify_token_seconds)
        self._mailer.send(
            Message(
                to=user.email,
                subject="Verify your Gatehouse email address",
                text=(
                    f"Confirm that {user.email} belongs to {user.username}.\n\n"
                    f"Open {base_url}/#verify={token}\n"
                    f"or send this token to POST /email/verify: {token}\n"
                ),
            )
        )

    def verify_email(self, token: str, device: Device) -> None:
        """Mark the email verified, if the token is live and the email is unchanged."""
        checked = self._throttle.check(self._throttle.counters(ip=device.ip))
        record = self._store.take_one_time(_hash(token), VERIFY, int(self._clock()))
        if record is None or not self._store.verify_email(record.user_id, record.email_key):
            self._throttle.fail(checked)
            raise errors.InvalidToken("The verification token is invalid or expired.")
        self._event(record.user_id, "email_verified", device)

    def _event(self, user_id: str, kind: str, device: Device) -> None:
        self._accounts.record(device.event(user_id, kind, "success", self._clock()))
