"""The shape of a WebAuthn credential in a request body, checked before any verification.

Browsers send ``PublicKeyCredential.toJSON()`` (WebAuthn Level 3: every binary value
base64url without padding). ``REGISTRATION`` and ``ASSERTION`` describe its two forms
member by member; ``http.json_object`` checks a ``credential`` (or ``passkey``) body
member against one, so a broken credential is a 400 with a field error per member
(``credential.response.clientDataJSON``), and the OpenAPI document shows the same
shapes (``schema``). Unknown members are refused as everywhere else in the API; an
optional member sent as ``null`` counts as absent. The sizes are WebAuthn's (a
credential id is at most 1,023 bytes, a user handle 64) or generous caps.

Only shape and encoding are checked here: what the bytes say (CBOR, signatures, the
challenge) is ceremony.py's, after the route has been throttled.

``RelyingParty`` (this stage's rp id, name and origins) is here too: the ceremony and
the passkey service both need it, and neither may import the other's module at cold
start (ceremony.py imports ``fido2``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.platform.errors import FieldError
from chalicelib.platform.shapes import Schema, Shape

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
#: COSE algorithms offered and accepted: ES256, EdDSA (Ed25519), RS256.
ALGORITHMS = (-7, -8, -257)
#: Transports a passkey may report that Gatehouse keeps (others are ignored, as
#: WebAuthn asks of relying parties).
TRANSPORTS = ("ble", "hybrid", "internal", "nfc", "smart-card", "usb")


@dataclass(frozen=True)
class RelyingParty:
    """This stage's relying party: its id, the name authenticators show, and the page
    origins allowed to run ceremonies for it."""

    id: str
    name: str
    origins: frozenset[str]


def b64decode(value: str) -> bytes | None:
    """Base64url without padding, strictly: None for anything else."""
    if not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _wrong_type(path: str, kind: str) -> list[FieldError]:
    return [FieldError(path, "invalid_type", f"'{path}' must be {kind}.")]


@dataclass(frozen=True)
class Binary:
    """Bytes as base64url without padding: 1 to ``max_bytes`` of them."""

    max_bytes: int

    @property
    def max_length(self) -> int:
        return -(-self.max_bytes * 4 // 3)

    def problems(self, path: str, value: Any) -> list[FieldError]:
        if type(value) is not str:
            return _wrong_type(path, "a base64url string")
        if len(value) > self.max_length:
            return [
                FieldError(path, "too_long", f"'{path}' is longer than {self.max_bytes} bytes.")
            ]
        decoded = b64decode(value)
        if not decoded:
            return [
                FieldError(path, "invalid_base64url", f"'{path}' is not base64url without padding.")
            ]
        return []

    def schema(self) -> Schema:
        return {
            "type": "string",
            "contentEncoding": "base64url",
            "pattern": "^[A-Za-z0-9_-]+$",
            "minLength": 2,
            "maxLength": self.max_length,
        }


@dataclass(frozen=True)
class Text:
    """A string of at most ``max_length`` characters; with ``only``, exactly that one."""

    max_length: int = 64
    only: str | None = None

    def problems(self, path: str, value: Any) -> list[FieldError]:
        if type(value) is not str:
            return _wrong_type(path, "a string")
        if self.only is not None and value != self.only:
            return [FieldError(path, "invalid_value", f"'{path}' must be '{self.only}'.")]
        if len(value) > self.max_length:
            return [FieldError(path, "too_long", f"'{path}' is longer than {self.max_length}.")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [FieldError(path, "invalid_string", f"'{path}' is not valid Unicode text.")]
        return []

    def schema(self) -> Schema:
        if self.only is not None:
            return {"const": self.only}
        return {"type": "string", "maxLength": self.max_length}


@dataclass(frozen=True)
class Texts:
    """A list of at most ``max_items`` short strings (a credential's transports)."""

    max_items: int = 8
    item: Text = Text(32)

    def problems(self, path: str, value: Any) -> list[FieldError]:
        if type(value) is not list:
            return _wrong_type(path, "an array of strings")
        if len(value) > self.max_items:
            return [FieldError(path, "too_long", f"'{path}' has more than {self.max_items}.")]
        return [
            p for index, v in enumerate(value) for p in self.item.problems(f"{path}[{index}]", v)
        ]

    def schema(self) -> Schema:
        return {"type": "array", "maxItems": self.max_items, "items": self.item.schema()}


@dataclass(frozen=True)
class Integer:
    """A COSE algorithm number (``publicKeyAlgorithm``): informative, never trusted."""

    def problems(self, path: str, value: Any) -> list[FieldError]:
        if type(value) is not int or not -(2**31) <= value < 2**31:
            return _wrong_type(path, "an integer")
        return []

    def schema(self) -> Schema:
        return {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}


@dataclass(frozen=True)
class AnyObject:
    """A JSON object whose members Gatehouse does not read (``clientExtensionResults``)."""

    def problems(self, path: str, value: Any) -> list[FieldError]:
        return [] if type(value) is dict else _wrong_type(path, "an object")

    def schema(self) -> Schema:
        return {"type": "object"}


@dataclass(frozen=True)
class Members:
    """A closed JSON object: these members and no others."""

    required: Mapping[str, Shape]
    optional: Mapping[str, Shape] = field(default_factory=dict)

    def problems(self, path: str, value: Any) -> list[FieldError]:
        if type(value) is not dict:
            return _wrong_type(path, "an object")
        known = {**self.required, **self.optional}
        found = [
            FieldError(f"{path}.{name}", "unknown_field", f"'{path}.{name}' is not accepted.")
            for name in value
            if name not in known
        ]
        for name, shape in known.items():
            member, where = value.get(name), f"{path}.{name}"
            if member is None:
                if name in self.required:
                    found.append(FieldError(where, "required", f"'{where}' is required."))
                continue
            found.extend(shape.problems(where, member))
        return found

    def schema(self) -> Schema:
        properties: dict[str, Schema] = {name: s.schema() for name, s in self.required.items()}
        for name, shape in self.optional.items():
            properties[name] = {"anyOf": [shape.schema(), {"type": "null"}]}
        return {
            "type": "object",
            "properties": properties,
            "required": list(self.required),
            "additionalProperties": False,
        }


#: WebAuthn's limit on a credential id, and on a user handle.
CREDENTIAL_ID_BYTES = 1023
USER_HANDLE_BYTES = 64
CLIENT_DATA_BYTES = 2048
ATTESTATION_BYTES = 8192
SIGNATURE_BYTES = 1024

_COMMON: dict[str, Shape] = {
    "id": Binary(CREDENTIAL_ID_BYTES),
    "rawId": Binary(CREDENTIAL_ID_BYTES),
    "type": Text(only="public-key"),
}
_COMMON_OPTIONAL: dict[str, Shape] = {
    "authenticatorAttachment": Text(32),
    "clientExtensionResults": AnyObject(),
}


@dataclass(frozen=True)
class Credential(Members):
    """A ``PublicKeyCredential`` in JSON: its members, and ``id`` the same as ``rawId``."""

    def problems(self, path: str, value: Any) -> list[FieldError]:
        found = super().problems(path, value)
        if not found and value["id"] != value["rawId"]:
            found.append(FieldError(f"{path}.id", "mismatch", f"'{path}.id' differs from rawId."))
        return found


def _credential(response: Members) -> Credential:
    return Credential({**_COMMON, "response": response}, _COMMON_OPTIONAL)


#: ``RegistrationResponseJSON``: what ``navigator.credentials.create()`` gives.
REGISTRATION = _credential(
    Members(
        {
            "clientDataJSON": Binary(CLIENT_DATA_BYTES),
            "attestationObject": Binary(ATTESTATION_BYTES),
        },
        {
            "transports": Texts(),
            "publicKeyAlgorithm": Integer(),
            "publicKey": Binary(ATTESTATION_BYTES),
            "authenticatorData": Binary(ATTESTATION_BYTES),
        },
    )
)
#: ``AuthenticationResponseJSON``: what ``navigator.credentials.get()`` gives.
ASSERTION = _credential(
    Members(
        {
            "clientDataJSON": Binary(CLIENT_DATA_BYTES),
            "authenticatorData": Binary(ATTESTATION_BYTES),
            "signature": Binary(SIGNATURE_BYTES),
        },
        {"userHandle": Binary(USER_HANDLE_BYTES)},
    )
)


def _bytes(value: str) -> bytes:
    decoded = b64decode(value)
    if decoded is None:  # checked by the shape already: never on a request path
        raise ValueError("not base64url")
    return decoded


@dataclass(frozen=True)
class Registration:
    """A checked ``RegistrationResponseJSON``, decoded."""

    credential_id: bytes
    client_data: bytes
    attestation_object: bytes
    transports: tuple[str, ...]

    @classmethod
    def of(cls, credential: Mapping[str, Any]) -> Registration:
        response = credential["response"]
        offered = response.get("transports") or []
        return cls(
            credential_id=_bytes(credential["rawId"]),
            client_data=_bytes(response["clientDataJSON"]),
            attestation_object=_bytes(response["attestationObject"]),
            transports=tuple(t for t in TRANSPORTS if t in offered),
        )


@dataclass(frozen=True)
class Assertion:
    """A checked ``AuthenticationResponseJSON``, decoded."""

    credential_id: bytes
    client_data: bytes
    authenticator_data: bytes
    signature: bytes
    user_handle: bytes | None

    @classmethod
    def of(cls, credential: Mapping[str, Any]) -> Assertion:
        response = credential["response"]
        handle = response.get("userHandle")
        return cls(
            credential_id=_bytes(credential["rawId"]),
            client_data=_bytes(response["clientDataJSON"]),
            authenticator_data=_bytes(response["authenticatorData"]),
            signature=_bytes(response["signature"]),
            user_handle=_bytes(handle) if handle is not None else None,
        )
