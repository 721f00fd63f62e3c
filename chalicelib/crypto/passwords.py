"""Password hashing (bcrypt) and the password policy.

bcrypt reads only the first 72 bytes of its input, and bcrypt 5 raises on longer
input. Truncating silently would let two passwords that share 72 bytes verify as each
other, so every new hash is ``bcrypt(base64(HMAC-SHA256(password)))``: 44 bytes, no NUL,
the whole password counts. The stored form says which scheme made it, so hashes
imported from another bcrypt store (plain ``$2b$...``) still verify.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import bcrypt

from chalicelib.platform import errors

#: Prefix of hashes made here: the bcrypt input is the prehash, not the raw password.
PREHASH_SCHEME = "bcrypt-sha256$"
_PREHASH_KEY = b"gatehouse/bcrypt-sha256/v1"  # domain separation, not a secret
_BCRYPT_LIMIT = 72


def normalise(password: str) -> bytes:
    """NFKC, so the same password typed on two keyboards is one password (NIST 800-63B)."""
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _prehash(password: bytes) -> bytes:
    return base64.b64encode(hmac.new(_PREHASH_KEY, password, hashlib.sha256).digest())


COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"
#: A username or email local part shorter than this is not looked for in a password.
_MIN_CONTAINED = 3


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (see data/SOURCES.md), read on first use, not at import."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n") for line in lines if line.strip())


def _rule(code: str, message: str) -> errors.FieldError:
    return errors.FieldError("password", code, message)


@dataclass(frozen=True)
class PasswordPolicy:
    """NIST SP 800-63B: length, not common or breached, not the account's own names.

    No composition rules (they make passwords weaker and harder to remember). Every
    Unicode character counts, after NFKC. All failing rules are reported at once.
    """

    min_length: int = 8
    max_length: int = 256

    def problems(
        self, password: str, *, username: str | None = None, email: str | None = None
    ) -> list[errors.FieldError]:
        normalised = unicodedata.normalize("NFKC", password)
        folded = normalised.casefold()
        found = []
        if len(normalised) < self.min_length:
            found.append(_rule("too_short", f"Use at least {self.min_length} characters."))
        if len(normalised) > self.max_length:
            found.append(_rule("too_long", f"Use at most {self.max_length} characters."))
        if folded in common_passwords():
            found.append(_rule("common", "This password is too common; choose another."))
        name = unicodedata.normalize("NFKC", username or "").casefold()
        if len(name) >= _MIN_CONTAINED and name in folded:
            found.append(_rule("contains_username", "Do not use your username in it."))
        mailbox = unicodedata.normalize("NFKC", email or "").casefold().rpartition("@")[0]
        if len(mailbox) >= _MIN_CONTAINED and mailbox in folded:
            found.append(_rule("contains_email", "Do not use your email address in it."))
        return found

    def check(
        self, password: str, *, username: str | None = None, email: str | None = None
    ) -> None:
        """Raise ``WeakPassword`` with a field error for every rule that failed."""
        found = self.problems(password, username=username, email=email)
        if found:
            raise errors.WeakPassword(errors=tuple(found))


@dataclass
class PasswordHasher:
    """bcrypt at a configured cost; ``verify_dummy`` spends the same time for unknown users."""

    cost: int = 12

    def hash(self, password: str) -> str:
        digest = bcrypt.hashpw(_prehash(normalise(password)), bcrypt.gensalt(self.cost))
        return PREHASH_SCHEME + digest.decode("ascii")

    def verify(self, password: str, stored: str) -> bool:
        """True when ``password`` matches ``stored``; never raises on odd input."""
        if stored.startswith(PREHASH_SCHEME):
            candidate = _prehash(normalise(password))
            digest = stored[len(PREHASH_SCHEME) :]
        else:
            # An imported plain bcrypt hash: verify as its origin did, but refuse
            # input bcrypt would truncate rather than compare only a prefix.
            candidate = normalise(password)
            digest = stored
            if len(candidate) > _BCRYPT_LIMIT:
                self.verify_dummy()
                return False
        try:
            return bcrypt.checkpw(candidate, digest.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False

    def verify_dummy(self) -> None:
        """Spend one verify's time against a throwaway hash of the same cost."""
        self.verify("not the password", self._dummy_hash)

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hash("gatehouse-dummy-password")
