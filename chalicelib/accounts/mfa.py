"""TOTP second factor (RFC 6238) and recovery codes.

The TOTP secret is encrypted at rest with AES-256-GCM under the data key of the key
ring (``keys.KeyDocument.data_key``: the local key file, or the Secrets Manager secret
when deployed), with the user id as associated data. A table dump alone therefore
reveals no secret, and a ciphertext copied onto another user's item does not decrypt.
Recovery codes are stored as SHA-256 hashes (each is 50 random bits, single use).
A code is accepted in the current 30-second step or one either side (clock skew), and
never twice: the accepted step is recorded and only later steps pass (``items.SecondFactor``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.platform import errors
from chalicelib.store.items import SecondFactor, UserRecord
from chalicelib.store.table import Store

RECOVERY_CODES = 10
_STEP = 30
_CIPHER_PREFIX = "v1:"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    sealed: str


class SecretBox:
    """Seals short secrets with the ring's data key, bound to one user."""

    def __init__(self, data_key: Callable[[], bytes]) -> None:
        self._data_key = data_key

    def _aead(self) -> AESGCM:
        return AESGCM(self._data_key())

    def seal(self, user_id: str, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead().encrypt(nonce, secret.encode("ascii"), user_id.encode("ascii"))
        return _CIPHER_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, user_id: str, sealed: str) -> str:
        if not sealed.startswith(_CIPHER_PREFIX):
            raise errors.GatehouseError()
        raw = base64.b64decode(sealed[len(_CIPHER_PREFIX) :])
        try:
            plain = self._aead().decrypt(raw[:12], raw[12:], user_id.encode("ascii"))
        except InvalidTag:
            raise errors.GatehouseError() from None
        return plain.decode("ascii")


def _hash_code(code: str) -> str:
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def new_recovery_codes() -> tuple[list[str], str]:
    """Ten fresh codes (``xxxxx-xxxxx``, base32) and the comma-joined hashes to store."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(7)).decode("ascii").lower()[:10]
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes, ",".join(_hash_code(c) for c in codes)


class Totp:
    def __init__(self, box: SecretBox, issuer: str, clock: Callable[[], float]) -> None:
        self._box = box
        self._issuer = issuer
        self._clock = clock

    def enrol(self, user: UserRecord) -> Enrolment:
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=self._issuer)
        return Enrolment(secret, uri, self._box.seal(user.id, secret))

    def step_matching(self, user_id: str, sealed: str, code: str) -> int | None:
        """The time step whose code ``code`` is (now, or one step either side), if any."""
        candidate = code.strip().replace(" ", "")
        if len(candidate) != 6 or not candidate.isdigit():
            return None
        totp = pyotp.TOTP(self._box.open(user_id, sealed))
        now = int(self._clock())
        for offset in (0, -1, 1):
            at = now + offset * _STEP
            if hmac.compare_digest(totp.at(at), candidate):
                return at // _STEP
        return None

    def second_factor(self, user: UserRecord, code: str) -> SecondFactor | None:
        """What logging in with ``code`` (a TOTP code or a recovery code) would spend."""
        if user.mfa_secret:
            step = self.step_matching(user.id, user.mfa_secret, code)
            if step is not None and step > user.mfa_last_step:
                return SecondFactor(totp_step=step)
        hashes = (user.recovery_hashes or "").split(",")
        presented = _hash_code(code)
        for stored in hashes:
            if stored and hmac.compare_digest(stored, presented):
                left = ",".join(h for h in hashes if h and h != stored)
                return SecondFactor(recovery_before=user.recovery_hashes, recovery_after=left)
        return None


class Mfa:
    """Enrol, confirm and disable TOTP for a signed-in user."""

    def __init__(self, store: Store, totp: Totp) -> None:
        self._store = store
        self._totp = totp

    def enrol(self, user: UserRecord) -> Enrolment:
        """A new pending secret; MFA stays off until ``confirm`` sees a valid code."""
        if user.mfa_enabled:
            raise errors.MfaAlreadyEnabled()
        enrolment = self._totp.enrol(user)
        self._store.set_mfa(user.id, {"mfa_pending": enrolment.sealed})
        return enrolment

    def confirm(self, user: UserRecord, code: str) -> list[str] | None:
        """Turn MFA on if ``code`` matches the pending secret; the ten recovery codes, or
        None for a wrong code (the caller counts it as a failure)."""
        if user.mfa_enabled or not user.mfa_pending:
            raise errors.MfaNotPending()
        step = self._totp.step_matching(user.id, user.mfa_pending, code)
        if step is None:
            return None
        codes, hashes = new_recovery_codes()
        changes: dict[str, str | int | bool | None] = {
            "mfa_enabled": True,
            "mfa_secret": user.mfa_pending,
            "mfa_pending": None,
            "mfa_last_step": step,
            "recovery_hashes": hashes,
        }
        if not self._store.set_mfa(user.id, changes, expect_pending=user.mfa_pending):
            raise errors.MfaNotPending()
        return codes

    def disable(self, user: UserRecord) -> None:
        """Turn MFA off and forget the secret and the recovery codes."""
        forgotten = ("mfa_secret", "mfa_pending", "recovery_hashes")
        changes: dict[str, str | int | bool | None] = dict.fromkeys(forgotten)
        changes["mfa_enabled"] = False
        self._store.set_mfa(user.id, changes)
