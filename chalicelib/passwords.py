"""Password hashing (bcrypt) and the password policy.

bcrypt reads only the first 72 bytes of its input, and bcrypt 5 raises on longer
input. Truncating silently would let two passwords that share 72 bytes verify as each
other, so every new hash is ``bcrypt(base64(HMAC-SHA256(password)))``: 44 bytes, no NUL,
the whole password counts. The stored form says which scheme made it, so hashes
imported from another bcrypt store (plain ``$2b$...``) still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from functools import cached_property

import bcrypt

from chalicelib import errors

#: Prefix of hashes made here: the bcrypt input is the prehash, not the raw password.
PREHASH_SCHEME = "bcrypt-sha256$"
_PREHASH_KEY = b"gatehouse/bcrypt-sha256/v1"  # domain separation, not a secret
_BCRYPT_LIMIT = 72


def normalise(password: str) -> bytes:
    """NFKC, so the same password typed on two keyboards is one password (NIST 800-63B)."""
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _prehash(password: bytes) -> bytes:
    return base64.b64encode(hmac.new(_PREHASH_KEY, password, hashlib.sha256).digest())


@dataclass(frozen=True)
class PasswordPolicy:
    """Length only, for now: at least ``min_length`` characters, at most ``max_length``."""

    min_length: int = 8
    max_length: int = 256

    def check(self, password: str) -> None:
        """Raise ``WeakPassword`` with a field error naming the rule that failed."""
        length = len(unicodedata.normalize("NFKC", password))
        if length < self.min_length:
            raise errors.WeakPassword(
                errors=(
                    errors.FieldError(
                        "password",
                        "too_short",
                        f"Use at least {self.min_length} characters.",
                    ),
                )
            )
        if length > self.max_length:
            raise errors.WeakPassword(
                errors=(
                    errors.FieldError(
                        "password",
                        "too_long",
                        f"Use at most {self.max_length} characters.",
                    ),
                )
            )


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
