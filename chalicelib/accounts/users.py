"""Accounts: registration, lookup, profile, password change, deletion, activity.

Login itself (throttling, the password check, the second factor) is in login.py; this
module owns the user item and what may change on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.accounts import identity
from chalicelib.crypto.passwords import PasswordHasher, PasswordPolicy
from chalicelib.crypto.tokens import is_id, new_id
from chalicelib.platform import errors
from chalicelib.store.items import ActivityEvent, SecondFactor, UserRecord
from chalicelib.store.table import Store

#: The user id of no user (never an id ``new_id`` makes): an unknown login name reads
#: it, and an unknown login's event is written against it, whose user check fails.
NO_USER = "unknown"
#: Events ``GET /me/activity`` returns (newest first).
ACTIVITY_PAGE = 50
#: Longer than any stored username or email key (64 or 254 characters after NFKC and
#: case folding), well under DynamoDB's 2,048-byte partition key.
_LONGEST_KEY_BYTES = 1024


@dataclass(frozen=True)
class Registration:
    username: str
    password: str
    email: str | None = None
    display_name: str | None = None


def public_user(user: UserRecord) -> dict[str, Any]:
    """The contract's ``User``: never a hash, never a secret."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "display_name": user.display_name,
        "mfa_enabled": user.mfa_enabled,
        "created_at": user.created_at,
    }


def public_event(event: ActivityEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "at": event.at,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "outcome": event.outcome,
    }


class Accounts:
    def __init__(
        self,
        store: Store,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._policy = policy
        self._clock = clock

    def register(self, form: Registration) -> UserRecord:
        """Create an account; the username and email are claimed atomically with it."""
        username = identity.check_username(form.username)
        email = identity.check_email(form.email) if form.email is not None else None
        display_name = (
            identity.check_display_name(form.display_name)
            if form.display_name is not None
            else None
        )
        self._policy.check(form.password, username=username, email=email)
        user = UserRecord(
            id=new_id(),
            username=username,
            username_key=identity.username_key(username),
            email=email,
            email_key=identity.email_key(email) if email else None,
            display_name=display_name,
            password_hash=self._hasher.hash(form.password),
            email_verified=False,
            mfa_enabled=False,
            disabled=False,
            created_at=int(self._clock()),
        )
        self._store.create_user(user)
        return user

    # ---------------------------------------------------------------- lookup

    @staticmethod
    def login_key(login: str) -> str:
        """The normalised form of a login name (an email if it has an ``@``)."""
        return identity.email_key(login) if "@" in login else identity.username_key(login)

    def _owner_of(self, login: str) -> str | None:
        key = self.login_key(login)
        if len(key.encode()) > _LONGEST_KEY_BYTES:
            # No account has such a name (registration caps both after NFKC), and
            # DynamoDB refuses a key over 2,048 bytes: a 503 would be the wrong answer.
            return None
        return self._store.user_id_by("EMAIL" if "@" in login else "USERNAME", key)

    def lookup(self, login: str) -> UserRecord | None:
        """The user a login name names. An unknown name still reads a (missing) user
        item, so it costs the same round trips as a known one."""
        return self._store.get_user(self._owner_of(login) or NO_USER)

    def find(self, reference: str) -> UserRecord | None:
        """A user by id, username or email (the admin command's way to name one)."""
        user_id = reference if is_id(reference) else self._owner_of(reference)
        return self._store.get_user(user_id) if user_id else None

    def get(self, user_id: str) -> UserRecord:
        """A signed-in user; ``NotFound`` if the account was deleted meanwhile."""
        user = self._store.get_user(user_id)
        if user is None:
            raise errors.NotFound("The account no longer exists.")
        return user

    # ---------------------------------------------------------------- changes

    def update_profile(
        self, user_id: str, *, email: str | None, display_name: str | None
    ) -> UserRecord:
        """Change the email (unverified again, unless only its case changed) and/or the
        display name (an empty one clears it)."""
        user = self.get(user_id)
        changed = user
        if display_name is not None:
            changed = replace(
                changed, display_name=identity.check_display_name(display_name) or None
            )
        if email is not None:
            address = identity.check_email(email)
            key = identity.email_key(address)
            same = key == user.email_key
            changed = replace(
                changed,
                email=address,
                email_key=key,
                email_verified=user.email_verified and same,
            )
        if changed != user:
            self._store.update_profile(user, changed)
        return changed

    def change_password(self, user: UserRecord, new_password: str) -> None:
        """Set a new password (the caller has confirmed the old one)."""
        self._policy.check(new_password, username=user.username, email=user.email)
        self._store.set_password(user.id, self._hasher.hash(new_password))

    def delete(self, user: UserRecord) -> None:
        """Remove the user, its guards (freeing the username and email), and everything
        in its partition: sessions, activity, to-dos."""
        self._store.delete_user(user)

    def spend_factor(self, user_id: str, factor: SecondFactor) -> bool:
        """Spend a TOTP step or recovery code outside a login (a step-up check); False
        if it was spent meanwhile."""
        return self._store.spend_factor(user_id, factor)

    def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """Disable (or enable) a user. Disabling ends every session, so the authorizer
        refuses their live access tokens at once and their refresh tokens stop working;
        login answers ``invalid_credentials`` like any other failure."""
        if not self._store.set_disabled(user_id, disabled):
            return False
        if disabled:
            self._store.delete_sessions(user_id)
        return True

    # ---------------------------------------------------------------- activity

    def record(self, event: ActivityEvent) -> None:
        self._store.record_event(event)

    def activity(self, user_id: str) -> list[dict[str, Any]]:
        return [public_event(e) for e in self._store.list_events(user_id, ACTIVITY_PAGE)]
