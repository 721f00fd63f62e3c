"""A software WebAuthn authenticator and client for the tests, built on ``cryptography``.

It does what a browser and a platform authenticator do together: from the server's
options JSON it makes the ``RegistrationResponseJSON`` of ``credentials.create()`` and
the ``AuthenticationResponseJSON`` of ``credentials.get()``, with attestation ``none``.
Every part a relying party must check can be set wrong on purpose (origin, rp id, type,
flags, sign count, challenge, signature, user handle), so each refusal is tested
against real bytes. Its CBOR encoder is its own: the payloads do not come from the
library that verifies them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
ORIGIN = "http://localhost:8000"
RP_ID = "localhost"
ES256, EDDSA, ES384, RS256 = -7, -8, -35, -257

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _head(major: int, n: int) -> bytes:
    """A CBOR item's head: its major type and its argument ``n``."""
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(value: Any) -> bytes:
    """Canonical CBOR of booleans, ints, bytes, text, lists and maps (all WebAuthn
    needs, and booleans to send where they do not belong)."""
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        encoded = sorted((cbor(k), cbor(v)) for k, v in value.items())
        return _head(5, len(value)) + b"".join(k + v for k, v in encoded)
    raise TypeError(type(value))


def new_key(alg: int) -> PrivateKey:
    if alg == EDDSA:
        return ed25519.Ed25519PrivateKey.generate()
    if alg == RS256:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1() if alg == ES384 else ec.SECP256R1())


def cose_key(key: PrivateKey, alg: int) -> dict[int, Any]:
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        return {1: 1, 3: alg, -1: 6, -2: public.public_bytes_raw()}
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        return {1: 3, 3: alg, -1: numbers.n.to_bytes(size, "big"), -2: b"\x01\x00\x01"}
    assert isinstance(public, ec.EllipticCurvePublicKey)
    point = public.public_numbers()
    size = (public.curve.key_size + 7) // 8
    curve = 2 if isinstance(public.curve, ec.SECP384R1) else 1
    return {
        1: 2,
        3: alg,
        -1: curve,
        -2: point.x.to_bytes(size, "big"),
        -3: point.y.to_bytes(size, "big"),
    }


def sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    algorithm = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
    return key.sign(message, ec.ECDSA(algorithm))


@dataclass
class Credential:
    """A passkey the authenticator holds: the private key never leaves it."""

    credential_id: bytes
    key: PrivateKey
    alg: int
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def id(self) -> str:
        return b64(self.credential_id)


def client_data(kind: str, challenge: str, origin: str, **extra: Any) -> bytes:
    """``clientDataJSON`` as a browser writes it."""
    data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    return json.dumps({**data, **extra}, separators=(",", ":")).encode()


def auth_data(rp_id: str, flags: int, count: int, attested: bytes = b"") -> bytes:
    return hashlib.sha256(rp_id.encode()).digest() + struct.pack(">BI", flags, count) + attested


def attested_data(credential: Credential, cose: dict[int, Any] | None = None) -> bytes:
    """The attested credential data of ``credential``: AAGUID (zeros), id, COSE key
    (its own, or ``cose`` in its place)."""
    key = cose_key(credential.key, credential.alg) if cose is None else cose
    identifier = credential.credential_id
    return bytes(16) + struct.pack(">H", len(identifier)) + identifier + cbor(key)


@dataclass
class Authenticator:
    """A platform authenticator with user verification, signing counts like a
    security key (set ``counting=False`` for one that always reports 0)."""

    origin: str = ORIGIN
    counting: bool = True
    credentials: list[Credential] = field(default_factory=list)

    def new_credential(
        self, rp_id: str, user_handle: bytes, alg: int = ES256, credential_id: bytes | None = None
    ) -> Credential:
        """A new credential for ``rp_id`` and the user ``user_handle``, kept here."""
        credential = Credential(
            credential_id=credential_id or os.urandom(32),
            key=new_key(alg),
            alg=alg,
            rp_id=rp_id,
            user_handle=user_handle,
        )
        self.credentials.append(credential)
        return credential

    def create(
        self,
        options: dict[str, Any],
        *,
        alg: int = ES256,
        origin: str | None = None,
        rp_id: str | None = None,
        kind: str = "webauthn.create",
        flags: int = UP | UV | AT,
        challenge: str | None = None,
        credential_id: bytes | None = None,
        transports: list[str] | None = None,
        client_extra: dict[str, Any] | None = None,
        cose: dict[int, Any] | None = None,
    ) -> dict[str, Any]:
        """``credentials.create()`` with these options; the new credential is kept
        (even when something was set wrong, as a real one would be). ``cose`` sends
        that COSE key in place of the credential's own."""
        rp = rp_id or options["rp"]["id"]
        credential = self.new_credential(rp, unb64(options["user"]["id"]), alg, credential_id)
        attested = attested_data(credential, cose)
        data = client_data(
            kind, challenge or options["challenge"], origin or self.origin, **(client_extra or {})
        )
        attestation = cbor(
            {
                "fmt": "none",
                "attStmt": {},
                "authData": auth_data(rp, flags, 0, attested if flags & AT else b""),
            }
        )
        return {
            "id": credential.id,
            "rawId": credential.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(data),
                "attestationObject": b64(attestation),
                "transports": ["hybrid", "internal"] if transports is None else transports,
                "publicKeyAlgorithm": alg,
            },
        }

    def get(
        self,
        options: dict[str, Any],
        credential: Credential | None = None,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        kind: str = "webauthn.get",
        flags: int = UP | UV,
        sign_count: int | None = None,
        challenge: str | None = None,
        user_handle: bytes | str | None = "own",
        bad_signature: bool = False,
        client_extra: dict[str, Any] | None = None,
        appended: bytes = b"",
    ) -> dict[str, Any]:
        """``credentials.get()``: signs with ``credential`` (by default the newest one
        for the options' rp id). ``user_handle`` is the credential's own unless given
        (``None`` leaves it out, as a non-discoverable credential does); ``appended``
        goes after the authenticator data's count (extensions, attested data), signed."""
        chosen = credential or next(
            c for c in reversed(self.credentials) if c.rp_id == options["rpId"]
        )
        if sign_count is None:
            chosen.sign_count += 1 if self.counting else 0
            sign_count = chosen.sign_count
        authenticator = auth_data(rp_id or options["rpId"], flags, sign_count, appended)
        data = client_data(
            kind, challenge or options["challenge"], origin or self.origin, **(client_extra or {})
        )
        signature = sign(chosen.key, authenticator + hashlib.sha256(data).digest())
        if bad_signature:
            signature = sign(new_key(chosen.alg), authenticator + hashlib.sha256(data).digest())
        handle = chosen.user_handle if user_handle == "own" else user_handle
        response: dict[str, Any] = {
            "clientDataJSON": b64(data),
            "authenticatorData": b64(authenticator),
            "signature": b64(signature),
        }
        if isinstance(handle, bytes):
            response["userHandle"] = b64(handle)
        return {
            "id": chosen.id,
            "rawId": chosen.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }
