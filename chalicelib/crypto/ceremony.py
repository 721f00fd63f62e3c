"""WebAuthn verification, with Yubico's ``fido2`` (its ``Fido2Server``).

Imported only when a passkey route runs (passkeys.py imports it inside its methods), so
no other route and no cold start pays for ``fido2``; see docs/concepts/passkeys.md for why
this library and what importing it costs.

Two stages, each with its own kind of failure:

1. ``parse_*`` reads the bytes of a credential whose JSON shape credentials.py has
   already checked: client data that is not JSON, an attestation object or
   authenticator data that is not what WebAuthn says is a ``ValidationError`` (400)
   naming the member, like any other malformed body.
2. ``verify_*`` runs the ceremony against the challenge the caller found in the table:
   type, origin, challenge, rp id hash, UP and UV flags, a supported algorithm, the
   signature. Any failure is ``Refused`` with a reason for the log, never for the client.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fido2 import cbor
from fido2.cose import ES256, RS256, CoseKey, EdDSA, UnsupportedKey
from fido2.server import Fido2Server
from fido2.utils import bytes2int, websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationConveyancePreference,
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialRpEntity,
    RegistrationResponse,
    UserVerificationRequirement,
)

from chalicelib.crypto.credentials import ALGORITHMS, Assertion, Registration, RelyingParty
from chalicelib.platform import errors

#: What parsing untrusted CBOR, JSON and binary structures can raise in ``fido2``.
_MALFORMED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    struct.error,
)
T = TypeVar("T")
#: ``fido2`` logs every credential id it registers or authenticates at INFO, outside
#: Gatehouse's one-line-per-request log; Gatehouse logs what it needs itself.
logging.getLogger("fido2").setLevel(logging.WARNING)
#: Gatehouse's challenges are 32 bytes; fido2 decodes base64url leniently, so a
#: garbled one could read as a few bytes or none.
MIN_CHALLENGE_BYTES = 16
#: Authenticators make ids of at least 16 random bytes (WebAuthn 4, "Credential ID");
#: a shorter one is not a passkey's.
MIN_CREDENTIAL_ID_BYTES = 16
#: RSA keys shorter than this are refused (NIST SP 800-57: 112-bit security), and
#: public exponents past 64 bits (OpenSSL's own cap for large moduli): no authenticator
#: makes either, and a huge exponent makes every verification slow.
MIN_RSA_BITS = 2048
MAX_RSA_EXPONENT_BITS = 64


class Refused(Exception):
    """The credential is well formed but does not pass; ``reason`` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewCredential:
    """What an enrolment stores: the id, the COSE public key (CBOR), the counts."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    backed_up: bool


@dataclass(frozen=True)
class Asserted:
    sign_count: int
    backed_up: bool


def _parsed(member: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except _MALFORMED:
        raise errors.ValidationError.of_field(
            member, "invalid_format", f"'{member}' is not what WebAuthn says it holds."
        ) from None


def _client_data(raw: bytes, path: str) -> CollectedClientData:
    def build() -> CollectedClientData:
        parsed = CollectedClientData(raw)
        if not isinstance(parsed.type, str) or not isinstance(parsed.origin, str):
            raise TypeError("type and origin are strings")
        if len(parsed.challenge) < MIN_CHALLENGE_BYTES:
            raise ValueError("no challenge Gatehouse issues is this short")
        return parsed

    return _parsed(f"{path}.response.clientDataJSON", build)


def _attestation_object(raw: bytes) -> AttestationObject:
    """``fido2`` takes ``fmt`` and ``attStmt`` as they come; WebAuthn says they are a
    text string and a map."""
    parsed = AttestationObject(raw)
    if not isinstance(parsed.fmt, str):
        raise TypeError("fmt is a text string")
    if not isinstance(parsed.att_stmt, dict):
        raise TypeError("attStmt is a map")
    return parsed


def parse_registration(registration: Registration, path: str) -> RegistrationResponse:
    """The registration as ``fido2`` objects; 400 if its bytes are not WebAuthn's."""
    client_data = _client_data(registration.client_data, path)
    attestation = _parsed(
        f"{path}.response.attestationObject",
        lambda: _attestation_object(registration.attestation_object),
    )
    return RegistrationResponse(
        raw_id=registration.credential_id,
        response=AuthenticatorAttestationResponse(
            client_data=client_data, attestation_object=attestation
        ),
    )


def parse_assertion(assertion: Assertion, path: str) -> AuthenticationResponse:
    """The assertion as ``fido2`` objects; 400 if its bytes are not WebAuthn's."""
    client_data = _client_data(assertion.client_data, path)
    authenticator_data = _parsed(
        f"{path}.response.authenticatorData",
        lambda: AuthenticatorData(assertion.authenticator_data),
    )
    return AuthenticationResponse(
        raw_id=assertion.credential_id,
        response=AuthenticatorAssertionResponse(
            client_data=client_data,
            authenticator_data=authenticator_data,
            signature=assertion.signature,
            user_handle=assertion.user_handle,
        ),
    )


def challenge_of(response: RegistrationResponse | AuthenticationResponse) -> bytes:
    """The challenge the client signed, by which the caller finds the stored one."""
    return response.response.client_data.challenge


class Ceremony:
    """Verifies registrations and assertions for one relying party."""

    def __init__(self, rp: RelyingParty) -> None:
        self._server = Fido2Server(
            PublicKeyCredentialRpEntity(name=rp.name, id=rp.id),
            attestation=AttestationConveyancePreference.NONE,
            verify_origin=lambda origin: isinstance(origin, str) and origin in rp.origins,
        )

    @staticmethod
    def _state(challenge: bytes) -> dict[str, Any]:
        """What ``Fido2Server`` keeps between begin and complete: here, the stored
        challenge found by the caller; user verification is always required."""
        return {
            "challenge": websafe_encode(challenge),
            "user_verification": UserVerificationRequirement.REQUIRED,
        }

    def verify_registration(
        self, response: RegistrationResponse, challenge: bytes
    ) -> NewCredential:
        """Check a new credential against ``challenge``; ``Refused`` if it does not pass."""
        _same_window(response.response.client_data)
        auth_data = response.response.attestation_object.auth_data
        credential = auth_data.credential_data
        if credential is None:
            raise Refused("no attested credential data")
        if credential.credential_id != response.raw_id:
            raise Refused("credential id differs from rawId")
        if len(credential.credential_id) < MIN_CREDENTIAL_ID_BYTES:
            raise Refused("credential id shorter than 16 bytes")
        key = credential.public_key
        if isinstance(key, UnsupportedKey) or key.ALGORITHM not in ALGORITHMS:
            raise Refused(f"unsupported algorithm {key.get(3)!r}")
        stored = _usable(key)
        _backup_flags(auth_data)
        try:
            self._server.register_complete(self._state(challenge), response)
        except ValueError as error:
            raise Refused(str(error)) from None
        return NewCredential(
            credential_id=credential.credential_id,
            public_key=cbor.encode(stored),
            sign_count=auth_data.counter,
            backed_up=auth_data.is_backed_up(),
        )

    def verify_assertion(
        self, response: AuthenticationResponse, challenge: bytes, public_key: bytes
    ) -> Asserted:
        """Check an assertion by the stored ``public_key``; ``Refused`` if it does not pass."""
        _same_window(response.response.client_data)
        auth_data = response.response.authenticator_data
        if auth_data.flags & AuthenticatorData.FLAG.AT:
            raise Refused("attested credential data in an assertion")
        _backup_flags(auth_data)
        try:
            stored = AttestedCredentialData.create(
                Aaguid.NONE,
                response.raw_id,
                CoseKey.parse(cbor.decode(public_key)),  # type: ignore[arg-type]
            )
            self._server.authenticate_complete(self._state(challenge), [stored], response)
        except _MALFORMED as error:
            raise Refused(str(error) or type(error).__name__) from None
        return Asserted(sign_count=auth_data.counter, backed_up=auth_data.is_backed_up())


def _same_window(client_data: CollectedClientData) -> None:
    """The page ran in a top-level window: Gatehouse's page is never framed. A browser
    writes ``crossOrigin: false`` there (older ones leave it out) and no ``topOrigin``
    (WebAuthn L3 sets it only for a cross-origin frame); anything else is refused."""
    data = json.loads(client_data)
    if data.get("crossOrigin", False) is not False or "topOrigin" in data:
        raise Refused("cross-origin ceremony")


def _backup_flags(auth_data: AuthenticatorData) -> None:
    """WebAuthn L3 7.1 and 7.2: a credential that is not backup eligible (BE) cannot
    be backed up (BS)."""
    flags = auth_data.flags
    if flags & AuthenticatorData.FLAG.BS and not flags & AuthenticatorData.FLAG.BE:
        raise Refused("backed up (BS) but not backup eligible (BE)")


def _usable(key: CoseKey) -> dict[int, Any]:
    """The new credential's public key rebuilt from the members its type defines
    (RFC 9053: kty 1, alg 3, then crv and x, y for EC2 and OKP, n and e for RSA), once
    a signature can be checked with it: a point on P-256 (ES256), 32 bytes of Ed25519
    (EdDSA), or an RSA key of 2048 bits or more (RS256). That is what enrolment stores,
    so no passkey is kept that could never sign in, and nothing else the client sent
    (other members, text keys, nested values) is kept with it."""
    try:
        if isinstance(key, ES256) and _is(key[1], 2) and _is(key[-1], 1):
            x, y = _octets(key[-2]), _octets(key[-3])
            ec.EllipticCurvePublicNumbers(bytes2int(x), bytes2int(y), ec.SECP256R1()).public_key()
            return {1: 2, 3: ES256.ALGORITHM, -1: 1, -2: x, -3: y}
        if isinstance(key, EdDSA) and _is(key[1], 1) and _is(key[-1], 6):
            x = _octets(key[-2])
            ed25519.Ed25519PublicKey.from_public_bytes(x)
            return {1: 1, 3: EdDSA.ALGORITHM, -1: 6, -2: x}
        if isinstance(key, RS256) and _is(key[1], 3):
            n, e = _octets(key[-1]), _octets(key[-2])
            modulus, exponent = bytes2int(n), bytes2int(e)
            if modulus.bit_length() >= MIN_RSA_BITS and (
                exponent.bit_length() <= MAX_RSA_EXPONENT_BITS
            ):
                rsa.RSAPublicNumbers(exponent, modulus).public_key()
                return {1: 3, 3: RS256.ALGORITHM, -1: n, -2: e}
    except _MALFORMED:
        pass
    raise Refused(f"unusable {type(key).__name__} public key")


def _is(value: Any, expected: int) -> bool:
    """``value`` is the integer ``expected`` (CBOR's ``true`` is not 1)."""
    return type(value) is int and value == expected


def _octets(value: Any) -> bytes:
    """A COSE key's byte-string member (a coordinate, a modulus, an exponent); a list
    of small integers would pass ``int.from_bytes`` but is no byte string."""
    if not isinstance(value, bytes):
        raise TypeError("a byte string")
    return value
