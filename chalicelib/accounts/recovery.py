"""Email flows: forgotten password, reset, email verification, and change notices.

Tokens are 256 random bits sent by mail and stored only as their SHA-256, with a short
TTL; each is spent by one conditional delete, so it works once even under races. Links
are built from the configured public URL (``ISSUER``), never from a request header: a
``Host: evil.example`` must not put an attacker's origin in front of a reset token.

``forgot`` answers the same way whether or not the email belongs to an account, and
takes the same time: the unknown path waits until the known path's usual duration
(a floor, ``forgot_floor_seconds``) has passed, so neither the answer nor its timing
tells an attacker which emails are registered. A reset link goes only to a verified
address: an address someone typed at sign-up, never confirmed, may not be theirs.
Throttled per email and per IP, every request.

Verification and notice mail is limited per account and per recipient address
(``Policy.mail``, every message): an account cannot be used to flood an inbox, and a
flood costs the attacker 429s, never the sender's reputation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.accounts import identity
from chalicelib.accounts.sessions import Device
from chalicelib.accounts.throttle import Counter, Throttle
from chalicelib.accounts.users import Accounts
from chalicelib.crypto.passwords import PasswordPolicy
from chalicelib.platform import errors
from chalicelib.platform.mail import Mailer, Message
from chalicelib.store.items import OneTimeRecord, UserRecord
from chalicelib.store.table import Store

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
        links: str,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._policy = policy
        self._throttle = throttle
        self._mailer = mailer
        self._clock = clock
        self._times = times
        #: The public base URL the links in mail start with (``Settings.issuer``).
        self._links = links

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

    def forgot(self, email: str, device: Device) -> None:
        """Mail a reset link if ``email`` is an account's verified address; the same
        answer, in the same time, either way."""
        started = time.monotonic()
        key = identity.email_key(email)
        # Every request counts, not only failures: the claim is never given back.
        self._throttle.claim(self._throttle.counters(forgot=key, ip=device.ip))
        user = self._accounts.lookup(email) if "@" in email else None
        if user is not None and user.email and user.email_verified and not user.disabled:
            token = self._issue(RESET, user, self._times.reset_token_seconds)
            minutes = self._times.reset_token_seconds // 60
            self._mailer.send(
                Message(
                    to=user.email,
                    subject="Reset your Gatehouse password",
                    text=(
                        f"Someone asked to reset the password of {user.username}.\n\n"
                        f"Open {self._links}/#reset={token}\n"
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
        """Set a new password with a reset token: every session and every passkey of the
        user ends; TOTP stays on (see docs/concepts/account-protection.md).

        Passkeys end because a reset is how the owner of an address takes an account
        back: someone who registered that address first, or held the account for a
        while, must not keep a way in that needs no password.
        """
        claim = self._throttle.claim(self._throttle.counters(ip=device.ip))
        record = self._store.peek_one_time(_hash(token))
        user = None
        # An expired token stays readable until TTL reaps it; and a link mailed to an
        # address the account no longer has proves nothing.
        if record and record.purpose == RESET and record.expires_at > int(self._clock()):
            user = self._store.get_user(record.user_id)
        if user is None or record is None or user.email_key != record.email_key:
            raise errors.InvalidToken("The reset token is invalid or expired.")
        # Check the policy before spending the token, so a weak choice can be retried
        # (and is not a guess: the attempt is given back).
        try:
            self._policy.check(new_password, username=user.username, email=user.email)
        except errors.WeakPassword:
            self._throttle.give_back(claim)
            raise
        if self._store.take_one_time(_hash(token), RESET, int(self._clock())) is None:
            raise errors.InvalidToken("The reset token is invalid or expired.")
        self._accounts.change_password(user, new_password)
        self._store.delete_sessions(user.id)
        self._store.delete_passkeys(user.id)
        # Whoever holds the reset link owns the account: lift its login lockout.
        self._throttle.give_back(
            claim,
            clear=self._throttle.owner_counters(user),
            event=device.event(user.id, "password_reset", "success", self._clock()),
        )

    def mail_counters(self, user_id: str, *addresses: str | None) -> tuple[Counter, ...]:
        """The mail counters of one message (or one change) from ``user_id``'s account
        to ``addresses`` (normalised keys; None skipped)."""
        found = self._throttle.counters(mail=f"account:{user_id}")
        for address in addresses:
            if address:
                found += self._throttle.counters(mail=f"to:{address}")
        return found

    def send_verification(self, user: UserRecord, *, claimed: bool = False) -> bool:
        """Mail a verification link to the user's unverified email (else do nothing);
        429 if the account or the address has had its share of mail, unless the
        caller ``claimed`` this message already. True if a message went out."""
        if not user.email or user.email_verified:
            return False
        if not claimed:
            self._throttle.claim(self.mail_counters(user.id, user.email_key))
        token = self._issue(VERIFY, user, self._times.verify_token_seconds)
        self._mailer.send(
            Message(
                to=user.email,
                subject="Verify your Gatehouse email address",
                text=(
                    f"Confirm that {user.email} belongs to {user.username}.\n\n"
                    f"Open {self._links}/#verify={token}\n"
                    f"or send this token to POST /email/verify: {token}\n"
                ),
            )
        )
        return True

    def notify_email_change(self, before: UserRecord, after: UserRecord, device: Device) -> None:
        """Tell the old address that the account's email changed: what, when and from
        where, with no link in it (a link that undid the change would hand the account
        to whoever reads that inbox). Counted by the change's own claim."""
        if not before.email:
            return
        at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self._clock()))
        self._mailer.send(
            Message(
                to=before.email,
                subject="Your Gatehouse email address was changed",
                text=(
                    f"The email address of the Gatehouse account {before.username} was "
                    f"changed from {before.email} to {_masked(after.email or '')} on {at}, "
                    f"from {device.ip or 'an unknown address'} "
                    f"({device.user_agent or 'unknown browser'}).\n\n"
                    "If you made this change, there is nothing to do. If you did not, "
                    "sign in, change your password and end your other sessions, or ask "
                    "your administrator for help: this address no longer receives the "
                    "account's mail.\n"
                ),
            )
        )

    def verify_email(self, token: str, device: Device) -> None:
        """Mark the email verified, if the token is live and the email is unchanged."""
        claim = self._throttle.claim(self._throttle.counters(ip=device.ip))
        record = self._store.take_one_time(_hash(token), VERIFY, int(self._clock()))
        if record is None or not self._store.verify_email(record.user_id, record.email_key):
            raise errors.InvalidToken("The verification token is invalid or expired.")
        event = device.event(record.user_id, "email_verified", "success", self._clock())
        self._throttle.give_back(claim, event=event)


def _masked(address: str) -> str:
    """``n***@example.com``: enough for the owner to recognise, not a copy to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
