"""Usernames and emails: the rules for what is accepted and how two spellings compare.

Uniqueness and login use the *key* (NFKC, then case-folded), so ``Alice``, ``ALICE`` and
the full-width ``\\uff21lice`` are one account; the profile shows the name as typed.
"""

from __future__ import annotations

import unicodedata

from chalicelib.platform import errors

USERNAME_MIN, USERNAME_MAX = 3, 64
EMAIL_MAX = 254
_USERNAME_PUNCTUATION = frozenset("._-")


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold()


def email_key(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def check_username(username: str) -> str:
    """Return the username as shown (NFKC) or raise: 3-64 letters, digits, ``.``, ``_``, ``-``.

    No ``@`` (so a login name is unambiguously a username or an email), no spaces or
    control characters (so it cannot spoof another in a list).
    """
    shown = unicodedata.normalize("NFKC", username)
    if not USERNAME_MIN <= len(shown) <= USERNAME_MAX:
        raise errors.ValidationError.of_field(
            "username",
            "invalid_length",
            f"Use {USERNAME_MIN} to {USERNAME_MAX} characters.",
        )
    if not all(c.isalnum() or c in _USERNAME_PUNCTUATION for c in shown):
        raise errors.ValidationError.of_field(
            "username",
            "invalid_characters",
            "Use letters, digits, '.', '_' and '-' only.",
        )
    return shown


def check_email(email: str) -> str:
    """Return the trimmed email or raise: one ``@``, a dotted domain, no spaces, <= 254."""
    value = email.strip()
    local, at, domain = value.rpartition("@")
    valid = (
        at == "@"
        and 0 < len(value) <= EMAIL_MAX
        # NFKC can expand one character to eighteen: the stored key must fit too.
        and len(email_key(value)) <= EMAIL_MAX
        and local
        and "@" not in local
        and "." in domain.strip(".")
        and not any(c.isspace() or unicodedata.category(c).startswith("C") for c in value)
    )
    if not valid:
        raise errors.ValidationError.of_field(
            "email", "invalid_email", "Enter a valid email address."
        )
    return value


def check_display_name(name: str) -> str:
    value = unicodedata.normalize("NFKC", name).strip()
    if len(value) > 100 or any(unicodedata.category(c).startswith("C") for c in value):
        raise errors.ValidationError.of_field(
            "display_name", "invalid_display_name", "Use up to 100 printable characters."
        )
    return value
