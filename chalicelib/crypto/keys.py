"""Signing keys: a key ring of several ``kid``s, one of which signs.

A ``KeyStore`` keeps a ``KeyDocument`` (the private keys, which one signs, the data key):
the local stage in a git-ignored file made on first run, deployed stages in one AWS
Secrets Manager secret. Rotation adds a key that signs from then on; the older keys stay
in the ring and keep verifying the tokens they signed until they are retired, so keys
rotate with no forced logout.

Verifying needs only the public keys (``VerifyingKeys``). Deployed stages publish them as
a JWK Set in a second secret, the only one the authorizer's role may read, so a stolen
authorizer role can check tokens but never mint one. Locally the verifying keys are the
key file's own public part. ``KeyCache`` reads a source once per container and again
when it is stale or a token names a ``kid`` it has not seen (a rotation made elsewhere).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.platform import errors

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

ALGORITHM = "RS256"
RSA_BITS = 2048

_log = logging.getLogger("gatehouse")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` that names the key and nothing else."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


#: The members a public RSA JWK of ours may have; anything else (above all a private
#: member: ``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``oth``) makes the set malformed.
_JWK_MEMBERS = frozenset({"kty", "kid", "alg", "use", "n", "e"})
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def _jwk_int(jwk: dict[str, Any], name: str) -> int:
    """A JWK's base64url integer member, refused unless it is exactly how ``_b64``
    writes it (no padding, no stray characters, no leading zero octets)."""
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"JWK member {name!r} is not a base64url string")
    number = int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")
    if _b64(number) != value:
        raise ValueError(f"JWK member {name!r} is not canonical base64url")
    return number


def _public_jwk(jwk: Any) -> tuple[str, rsa.RSAPublicKey]:
    """The ``kid`` and key of one JWK, which must be a public RS256 signing key of at
    least ``RSA_BITS`` whose ``kid`` is its own RFC 7638 thumbprint."""
    if not isinstance(jwk, dict):
        raise ValueError("a JWK is not an object")
    if _PRIVATE_JWK_MEMBERS & jwk.keys():
        raise ValueError("a JWK holds a private key member")
    if not jwk.keys() <= _JWK_MEMBERS:
        raise ValueError(f"a JWK has unknown members {sorted(jwk.keys() - _JWK_MEMBERS)}")
    if jwk.get("kty") != "RSA" or jwk.get("alg") != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ValueError(f"a JWK is not an {ALGORITHM} signing key")
    key = rsa.RSAPublicNumbers(_jwk_int(jwk, "e"), _jwk_int(jwk, "n")).public_key()
    if key.key_size < RSA_BITS:
        raise ValueError(f"a JWK is shorter than {RSA_BITS} bits")
    kid = jwk.get("kid")
    if kid != thumbprint(key):
        raise ValueError("a JWK's kid is not its thumbprint")
    return kid, key


@dataclass(frozen=True)
class VerifyingKeys:
    """Every public key that may verify a token, by ``kid``: all a verifier needs, and
    nothing that signs."""

    verifying: dict[str, rsa.RSAPublicKey]

    def verifying_key(self, kid: str) -> rsa.RSAPublicKey | None:
        return self.verifying.get(kid)

    def jwks(self) -> dict[str, Any]:
        """The RFC 7517 JWK Set of every verifying key (what ``/.well-known/jwks.json``
        serves and what the public-keys secret holds)."""
        keys = []
        for kid, key in self.verifying.items():
            numbers = key.public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "kid": kid,
                    "alg": ALGORITHM,
                    "use": "sig",
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            )
        return {"keys": keys}

    def dumps(self) -> str:
        return json.dumps(self.jwks())

    @staticmethod
    def parse(text: str) -> VerifyingKeys:
        """The keys of a JWK Set as ``jwks`` writes it; ``ValueError`` for anything else
        (not JSON, another shape, a private member, another key type or algorithm, a
        duplicate or wrong ``kid``, no key at all), so a corrupt set is "unavailable"."""
        raw = json.loads(text)
        if not isinstance(raw, dict) or set(raw) != {"keys"} or not isinstance(raw["keys"], list):
            raise ValueError("the JWK Set is malformed")
        found = [_public_jwk(jwk) for jwk in raw["keys"]]
        keys = dict(found)
        if not keys:
            raise ValueError("the JWK Set is empty")
        if len(keys) != len(found):
            raise ValueError("the JWK Set names a kid twice")
        return VerifyingKeys(keys)


@dataclass(frozen=True)
class KeyRing(VerifyingKeys):
    """The key that signs new tokens, every public key that may verify one, and the data
    key."""

    signing: SigningKey
    #: The symmetric key that encrypts secrets at rest (TOTP secrets); see mfa.py.
    data_key: bytes = b""

    def secret_key(self) -> bytes:
        """The data key, or 503 if the ring has none yet (a Secrets Manager secret from
        before data keys: ``rotate-key`` adds one). Never an empty or short key."""
        if len(self.data_key) != 32:
            raise errors.ServiceUnavailable("The data key is unavailable.")
        return self.data_key

    def public(self) -> VerifyingKeys:
        """Only the verifying keys: what may be published and what a verifier holds."""
        return VerifyingKeys(dict(self.verifying))


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA signing keys are supported")
    return key


def ring_from_pems(pems: list[str], signing_kid: str | None = None) -> KeyRing:
    """Build a ring from PEM private keys; the signer is ``signing_kid`` or the last key."""
    signers = {thumbprint(k.public_key()): k for k in map(_load_private, pems)}
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
class StoredKey:
    """One key of the ring and where it is in its life (see rotation.py)."""

    kid: str
    private_pem: str
    created_at: int
    #: When the public keys were seen to hold it (0: not yet): it may sign once every
    #: cache of them has had time to see it.
    published_at: int = 0
    #: When it stopped signing (0: it still signs, never did, or nobody recorded it).
    signed_until: int = 0


@dataclass(frozen=True)
class KeyDocument:
    """What a key source stores: ``{"signing_kid": ..., "next_kid": ..., "keys": [{"kid",
    "private_pem", "created_at", "published_at", "signed_until"}], "data_key": ...}``.
    Immutable; every change returns a new document. ``next_kid`` is a key published
    ahead of signing (scheduled rotation). ``data_key`` (32 random bytes, base64)
    encrypts secrets kept in the table, so a table dump alone reveals none of them; it
    survives every rotation."""

    signing_kid: str
    keys: tuple[StoredKey, ...]
    data_key: str = ""
    next_kid: str = ""

    @classmethod
    def parse(cls, text: str) -> KeyDocument:
        """The document in ``text``; ``ValueError`` (or ``KeyError``) if it is not one,
        whatever its shape, so a corrupt source is "unavailable", never a crash."""
        try:
            return cls._parse(json.loads(text))
        except (TypeError, AttributeError) as error:  # valid JSON, wrong shape
            raise ValueError("the key document is malformed") from error

    @classmethod
    def _parse(cls, raw: Any) -> KeyDocument:
        keys = tuple(
            StoredKey(
                kid=k.get("kid") or thumbprint(_load_private(k["private_pem"]).public_key()),
                private_pem=k["private_pem"],
                created_at=int(k.get("created_at", 0)),
                # A key from before scheduled rotation was published when it was made.
                published_at=int(k.get("published_at", k.get("created_at", 0))),
                signed_until=int(k.get("signed_until", 0)),
            )
            for k in raw["keys"]
        )
        if not all(isinstance(k.private_pem, str) for k in keys):
            raise ValueError("a private_pem is not a string")
        if not keys:
            raise ValueError("the key ring is empty")
        kids = {k.kid for k in keys}
        signing = raw.get("signing_kid")
        if signing not in kids:
            signing = keys[-1].kid
        following = raw.get("next_kid") or ""
        if following not in kids or following == signing:
            following = ""
        return cls(signing, keys, str(raw.get("data_key", "")), following)

    @classmethod
    def new(cls, now: int) -> KeyDocument:
        return cls(signing_kid="", keys=()).rotated(now)

    def with_data_key(self) -> KeyDocument:
        """This document, with a data key made now if it has none yet."""
        if self.data_key:
            return self
        return replace(self, data_key=base64.b64encode(secrets.token_bytes(32)).decode("ascii"))

    def dumps(self) -> str:
        return json.dumps(
            {
                "signing_kid": self.signing_kid,
                "next_kid": self.next_kid,
                "keys": [
                    {
                        "kid": k.kid,
                        "private_pem": k.private_pem,
                        "created_at": k.created_at,
                        "published_at": k.published_at,
                        "signed_until": k.signed_until,
                    }
                    for k in self.keys
                ],
                "data_key": self.data_key,
            }
        )

    def ring(self) -> KeyRing:
        ring = ring_from_pems([k.private_pem for k in self.keys], self.signing_kid)
        return replace(ring, data_key=base64.b64decode(self.data_key))

    def key(self, kid: str) -> StoredKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def _changed(
        self, kid: str, *, published_at: int | None = None, signed_until: int | None = None
    ) -> tuple[StoredKey, ...]:
        def changed(key: StoredKey) -> StoredKey:
            return replace(
                key,
                published_at=key.published_at if published_at is None else published_at,
                signed_until=key.signed_until if signed_until is None else signed_until,
            )

        return tuple(changed(k) if k.kid == kid else k for k in self.keys)

    def with_next(self, now: int) -> KeyDocument:
        """A new key, to be published now and to sign later (``promoted``)."""
        pem = new_private_pem()
        kid = thumbprint(_load_private(pem).public_key())
        added = (*self.keys, StoredKey(kid, pem, now))
        return replace(self, keys=added, next_kid=kid).with_data_key()

    def published(self, kid: str, now: int) -> KeyDocument:
        """``kid`` was seen in the public keys at ``now``."""
        return replace(self, keys=self._changed(kid, published_at=now))

    def signed_until_now(self, kid: str, now: int) -> KeyDocument:
        """Record that ``kid`` (not the signer) signs nothing after ``now``."""
        return replace(self, keys=self._changed(kid, signed_until=now))

    def promoted(self, now: int) -> KeyDocument:
        """The next key signs from ``now``; the one before it stops signing then."""
        if not self.next_kid:
            raise ValueError("there is no next key to promote")
        keys = self._changed(self.signing_kid, signed_until=now)
        return replace(self, keys=keys, signing_kid=self.next_kid, next_kid="")

    def rotated(self, now: int) -> KeyDocument:
        """A new key signs from now on (``rotate-key``: at once, for an emergency; the
        schedule publishes first); every older key keeps verifying."""
        added = self.with_next(now)
        if not self.signing_kid:  # the ring's first key: none signed before it
            return replace(added, signing_kid=added.next_kid, next_kid="")
        return added.promoted(now)

    def retired(self, kid: str) -> KeyDocument:
        """Drop ``kid``: tokens it signed stop verifying. The signing key cannot be retired."""
        if kid == self.signing_kid:
            raise ValueError("the signing key cannot be retired; rotate first")
        kept = tuple(k for k in self.keys if k.kid != kid)
        if len(kept) == len(self.keys):
            raise ValueError(f"no key {kid!r} in the ring")
        return replace(self, keys=kept, next_kid="" if kid == self.next_kid else self.next_kid)


_Keys_co = TypeVar("_Keys_co", bound=VerifyingKeys, covariant=True)
_Keys = TypeVar("_Keys", bound=VerifyingKeys)


class KeySource(Protocol[_Keys_co]):
    """Where keys come from: a ``KeyRing`` to sign with, or ``VerifyingKeys`` to verify."""

    def load(self) -> _Keys_co: ...


class KeyStore(KeySource[KeyRing], Protocol):
    """A key ring source that can also be rewritten (the admin command rotates and retires)."""

    def read(self) -> KeyDocument: ...

    def write(self, document: KeyDocument) -> None: ...

    def read_versioned(self) -> tuple[KeyDocument | None, str]:
        """The document (None if there is none yet) and a version naming it."""
        ...

    def write_if(self, document: KeyDocument, version: str) -> bool:
        """Write ``document`` only if the stored one is still ``version``: False if it
        changed meanwhile (another rotation won), so two runs never both write."""
        ...


class PublicKeyStore(KeySource[VerifyingKeys], Protocol):
    """Where a stage publishes its verifying keys (the admin command writes them)."""

    def write(self, keys: VerifyingKeys) -> None: ...


@dataclass(frozen=True)
class PublicPart:
    """The verifying keys of a key ring source: the local stage's verifier, which reads
    the one key file and keeps only its public keys."""

    source: KeySource[KeyRing]

    def load(self) -> VerifyingKeys:
        return self.source.load().public()


@dataclass(frozen=True)
class LocalKeyFile:
    """The local stage's key document: a JSON file under ``.local/``, made on first read.

    Writes are atomic (a temp file renamed into place); the first creation is also
    exclusive (hard-linked into place), so two processes starting at once share one key.
    The file is mode 0600.
    """

    path: Path
    clock: Callable[[], float] = time.time

    def read(self) -> KeyDocument:
        if not self.path.exists():
            self._place(KeyDocument.new(int(self.clock())), exclusive=True)
        document = KeyDocument.parse(self.path.read_text("utf-8"))
        if not document.data_key:  # a file from before data keys existed: add one
            document = document.with_data_key()
            self.write(document)
        return document

    def load(self) -> KeyRing:
        return self.read().ring()

    def write(self, document: KeyDocument) -> None:
        self._place(document, exclusive=False)

    def read_versioned(self) -> tuple[KeyDocument | None, str]:
        document = self.read()
        return document, _digest(self.path.read_text("utf-8"))

    def write_if(self, document: KeyDocument, version: str) -> bool:
        """Under an exclusive lock on a file beside the key file, so two processes
        compare and write one after the other."""
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            if _digest(self.path.read_text("utf-8")) != version:
                return False
            self.write(document)
            return True

    def _place(self, document: KeyDocument, *, exclusive: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(document.dumps())
            if exclusive:
                with contextlib.suppress(FileExistsError):  # another process won: use its key
                    os.link(tmp, self.path)
            else:
                os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class SecretsManagerKeys:
    """Deployed stages: the key document is the ``SecretString`` of one secret."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id

    def read(self) -> KeyDocument:
        text, _ = _secret(self._client, self.secret_id, "The signing keys are unavailable.")
        return KeyDocument.parse(text)

    def load(self) -> KeyRing:
        return self.read().ring()

    def write(self, document: KeyDocument) -> None:
        self._client.put_secret_value(SecretId=self.secret_id, SecretString=document.dumps())

    def read_versioned(self) -> tuple[KeyDocument | None, str]:
        """The current version; a secret created empty (no value yet) is ``(None, "")``."""
        try:
            text, version = _secret(
                self._client, self.secret_id, "The signing keys are unavailable."
            )
        except errors.ServiceUnavailable as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and _code(cause) == "ResourceNotFoundException":
                return None, ""
            raise
        return KeyDocument.parse(text), version

    def write_if(self, document: KeyDocument, version: str) -> bool:
        """A compare-and-swap on the secret's versions: the new version's id is derived
        from the one it replaces (``ClientRequestToken``), and Secrets Manager refuses a
        second, different value under an id it has seen (``ResourceExistsException``),
        so each version has at most one successor, whoever writes it."""
        successor = uuid.uuid5(uuid.NAMESPACE_URL, f"gatehouse:{self.secret_id}:{version}")
        try:
            self._client.put_secret_value(
                SecretId=self.secret_id,
                SecretString=document.dumps(),
                ClientRequestToken=str(successor),
            )
        except ClientError as error:
            if _code(error) == "ResourceExistsException":
                return False
            raise
        return True


def _secret(client: SecretsManagerClient, secret_id: str, unavailable: str) -> tuple[str, str]:
    """The secret's current value and version id; 503 (``unavailable``) if it cannot be
    read, with the AWS error as the cause."""
    try:
        secret = client.get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as error:
        raise errors.ServiceUnavailable(unavailable) from error
    return secret["SecretString"], str(secret["VersionId"])


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SecretsManagerPublicKeys:
    """Deployed stages' verifying keys: the public JWK Set, the ``SecretString`` of a
    secret of its own (``PUBLIC_KEYS_SECRET``), so that what verifies (the authorizer)
    never needs to read the signing secret."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id

    def load(self) -> VerifyingKeys:
        text, _ = _secret(self._client, self.secret_id, "The verifying keys are unavailable.")
        return VerifyingKeys.parse(text)

    def write(self, keys: VerifyingKeys) -> None:
        self._client.put_secret_value(SecretId=self.secret_id, SecretString=keys.dumps())


@dataclass(frozen=True)
class KeyStores:
    """A stage's keys: the private ring it signs with, and where its verifiers read the
    public keys (``published``, a secret of their own; locally none: the key file's
    own public part)."""

    signing: KeyStore
    published: PublicKeyStore | None = None

    @property
    def verifying(self) -> KeySource[VerifyingKeys]:
        if self.published is not None:
            return self.published
        return PublicPart(self.signing)

    def publish(self, document: KeyDocument) -> None:
        """Write ``document``'s public keys where verifiers read them (nothing to write
        locally, where they are read from the document itself)."""
        if self.published is not None:
            self.published.write(document.ring().public())

    def settle(self, published: KeyDocument, *, attempts: int = 3) -> None:
        """After publishing ``published``: make what verifiers read match the ring as it
        stands now. A run that read the ring just before another run changed it (added a
        key and published it) may publish the older keys last; the check after every
        publish puts the newer ones back, so the last publisher always leaves the public
        keys equal to the ring (one GetSecretValue when nothing raced)."""
        if self.published is None:
            return
        for _ in range(attempts):
            current = self.signing.read()
            if current.ring().public().jwks() == published.ring().public().jwks():
                return
            self.publish(current)
            published = current

    def add_published_first(self, document: KeyDocument, version: str) -> bool:
        """Write a ring that adds a key: its public keys first (the new key signs nothing
        yet, so verifiers may see it early), then the ring, if it is still ``version``;
        then ``settle``, whether this write won (another run may have published older
        keys meanwhile) or lost (what this call published may hide the winner's key).
        False: another writer changed the ring first."""
        self.publish(document)
        written = self.signing.write_if(document, version)
        self.settle(document)
        return written


class KeyCache(Generic[_Keys]):
    """The keys, read once per container, again after ``max_age`` seconds, and again
    (at most every ``reload_gap`` seconds, so random ``kid``s cannot hammer the source)
    when a token names a ``kid`` they lack. A failed re-read keeps the last keys."""

    def __init__(
        self,
        source: KeySource[_Keys],
        clock: Callable[[], float],
        *,
        max_age: float = 300.0,
        reload_gap: float = 30.0,
    ) -> None:
        self.source = source
        self._clock = clock
        self._max_age = max_age
        self._reload_gap = reload_gap
        self._ring: _Keys | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    @property
    def ring(self) -> _Keys:
        if self._ring is None or self._clock() - self._loaded_at > self._max_age:
            return self._reload()
        return self._ring

    def verifying_key(self, kid: str) -> rsa.RSAPublicKey | None:
        ring = self.ring
        key = ring.verifying_key(kid)
        if key is None and self._clock() - self._loaded_at > self._reload_gap:
            key = self._reload().verifying_key(kid)
        return key

    def _reload(self) -> _Keys:
        with self._lock:
            try:
                ring = self.source.load()
            except (OSError, ValueError, KeyError, errors.ServiceUnavailable) as error:
                if self._ring is None:
                    raise errors.ServiceUnavailable("The keys are unavailable.") from error
                _log.warning("key source unreadable; keeping the last keys")
                ring = self._ring
            self._ring = ring
            self._loaded_at = self._clock()
            return ring
