"""Moving users in and out with their password hashes, as JSON lines: no lock-in.

An export line holds everything needed to recreate the account elsewhere, including
the bcrypt hash. An import accepts Gatehouse's own ``bcrypt-sha256$`` hashes and plain
bcrypt hashes (``$2a$``, ``$2b$``, ``$2y$``) from any other bcrypt store, so users keep
their passwords. Sessions, MFA secrets and activity do not travel.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.accounts import identity
from chalicelib.crypto.passwords import PREHASH_SCHEME
from chalicelib.crypto.tokens import is_id, new_id
from chalicelib.platform import errors
from chalicelib.store.items import UserRecord

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def export_line(user: UserRecord) -> str:
    return json.dumps(
        {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "email_verified": user.email_verified,
            "display_name": user.display_name,
            "created_at": user.created_at,
            "disabled": user.disabled,
            "password_hash": user.password_hash,
        },
        ensure_ascii=False,
    )


def _field(raw: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = raw.get(name, default)
    if value is not None and type(value) is not kind:
        raise ValueError(f"'{name}' must be {kind.__name__}")
    return value


def import_line(line: str, now: int) -> UserRecord:
    """A user record from one export line; ``ValueError`` says what is wrong with it."""
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    password_hash = _field(raw, "password_hash", str, None)
    if not password_hash or not password_hash.startswith((PREHASH_SCHEME, *_BCRYPT_PREFIXES)):
        raise ValueError("'password_hash' must be a bcrypt hash")
    user_id = _field(raw, "id", str, None) or new_id()
    if not is_id(user_id):
        raise ValueError("'id' must be 32 lowercase hex digits (or absent)")
    try:
        # ``or ""``: a null username is as missing as an absent one (not a TypeError).
        username = identity.check_username(_field(raw, "username", str, "") or "")
        email = _field(raw, "email", str, None)
        email = identity.check_email(email) if email is not None else None
        display_name = _field(raw, "display_name", str, None)
        if display_name is not None:
            display_name = identity.check_display_name(display_name)
    except errors.ValidationError as error:
        raise ValueError("; ".join(e.message for e in error.errors)) from None
    return UserRecord(
        id=user_id,
        username=username,
        username_key=identity.username_key(username),
        email=email,
        email_key=identity.email_key(email) if email else None,
        display_name=display_name,
        password_hash=password_hash,
        email_verified=bool(_field(raw, "email_verified", bool, False)),
        mfa_enabled=False,
        disabled=bool(_field(raw, "disabled", bool, False)),
        created_at=_field(raw, "created_at", int, None) or now,
    )
