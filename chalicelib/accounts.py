"""Accounts: registration and the password check at login.

Login fails one way. An unknown user, a wrong password and a disabled account all
raise the same ``InvalidCredentials`` after the same bcrypt work, so neither the answer
nor its timing tells an attacker which usernames exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import errors, identity
from chalicelib.items import UserRecord
from chalicelib.passwords import PasswordHasher, PasswordPolicy
from chalicelib.store import Store
from chalicelib.tokens import is_id, new_id


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

    def _owner_of(self, login: str) -> str | None:
        """The id of the user whose email (if ``login`` has an ``@``) or username it is."""
        if "@" in login:
            return self._store.user_id_by("EMAIL", identity.email_key(login))
        return self._store.user_id_by("USERNAME", identity.username_key(login))

    def find(self, reference: str) -> UserRecord | None:
        """A user by id, username or email (the admin command's way to name one)."""
        user_id = reference if is_id(reference) else self._owner_of(reference)
        return self._store.get_user(user_id) if user_id else None

    def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """Disable (or enable) a user. Disabling ends every session, so the authorizer
        refuses their live access tokens at once and their refresh tokens stop working;
        login answers ``invalid_credentials`` like any other failure."""
        if not self._store.set_disabled(user_id, disabled):
            return False
        if disabled:
            self._store.delete_sessions(user_id)
        return True

    def authenticate(self, login: str, password: str) -> UserRecord:
        """The user whose username or email is ``login`` and whose password this is."""
        user_id = self._owner_of(login)
        # An unknown login still reads a (missing) user item: the same round trips,
        # then the same bcrypt work, as a wrong password.
        user = self._store.get_user(user_id or "unknown")
        if user is None:
            self._hasher.verify_dummy()
            raise errors.InvalidCredentials()
        if not self._hasher.verify(password, user.password_hash) or user.disabled:
            raise errors.InvalidCredentials()
        return user
