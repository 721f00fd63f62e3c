"""Signing keys: a key ring of several ``kid``s, one of which signs.

A ``KeySource`` loads the ring. The local stage keeps it in a git-ignored file made on
first run; deployed stages will read AWS Secrets Manager (same interface). Older keys
stay in the ring to verify the tokens they signed until those expire, so keys rotate
with no forced logout.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyRing:
    """The key that signs new tokens and every public key that may verify one."""

    signing: SigningKey
    verifying: dict[str, rsa.RSAPublicKey]

    def verifying_key(self, kid: str) -> rsa.RSAPublicKey | None:
        return self.verifying.get(kid)


class KeySource(Protocol):
    """Where a key ring comes from (a local file, Secrets Manager)."""

    def load(self) -> KeyRing: ...


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` that names the key and nothing else."""
    numbers = public_key.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    canonical = json.dumps(
        {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def ring_from_pems(pems: list[str], signing_kid: str | None = None) -> KeyRing:
    """Build a ring from PEM private keys; the signer is ``signing_kid`` or the last key."""
    signers: dict[str, rsa.RSAPrivateKey] = {}
    for pem in pems:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("only RSA signing keys are supported")
        signers[thumbprint(key.public_key())] = key
    if not signers:
        raise ValueError("the key ring is empty")
    kid = signing_kid if signing_kid in signers else list(signers)[-1]
    return KeyRing(
        signing=SigningKey(kid, signers[kid]),
        verifying={k: v.public_key() for k, v in signers.items()},
    )


def new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@dataclass(frozen=True)
class LocalKeyFile:
    """The local stage's key ring: a JSON file under ``.local/``, created on first use.

    Creation is atomic and exclusive (write a temp file, then hard-link it into place),
    so two processes starting at once end up sharing one key. The file is mode 0600.
    """

    path: Path

    def load(self) -> KeyRing:
        if not self.path.exists():
            self._create()
        document = json.loads(self.path.read_text("utf-8"))
        keys = document["keys"]
        return ring_from_pems([k["private_pem"] for k in keys], document.get("signing_kid"))

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pem = new_private_pem()
        document = {"keys": [{"private_pem": pem, "created_at": int(time.time())}]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, self.path)
        finally:
            os.unlink(tmp)
