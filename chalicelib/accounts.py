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
from chalicelib.tokens import new_id


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
        self._policy.check(form.password)
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

    def authenticate(self, login: str, password: str) -> UserRecord:
        """The user whose username or email is ``login`` and whose password this is."""
        if "@" in login:
            user_id = self._store.user_id_by("EMAIL", identity.email_key(login))
        else:
            user_id = self._store.user_id_by("USERNAME", identity.username_key(login))
        # An unknown login still reads a (missing) user item: the same round trips,
        # then the same bcrypt work, as a wrong password.
        user = self._store.get_user(user_id or "unknown")
        if user is None:
            self._hasher.verify_dummy()
            raise errors.InvalidCredentials()
        if not self._hasher.verify(password, user.password_hash) or user.disabled:
            raise errors.InvalidCredentials()
        return user
