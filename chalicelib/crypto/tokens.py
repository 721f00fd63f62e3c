"""Access tokens (RS256 JWTs) and opaque refresh tokens.

Verification pins everything (RFC 8725): the algorithm list never comes from the
token's own header, and issuer, audience, expiry, the ``at+jwt`` type (RFC 9068) and the
claims Gatehouse relies on are all required. ``alg: none``, HS256 signed with the public
key, a refresh token presented as a bearer token: all fail the same way.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from chalicelib.crypto.keys import ALGORITHM, KeyCache, KeyRing, KeySource, VerifyingKeys
from chalicelib.platform import errors

# A media type (RFC 9068), not a secret.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105  # nosec B105
#: Longest bearer token we will even parse; ours are about 800 bytes.
MAX_TOKEN_LENGTH = 4096
#: Clock skew tolerated between the Lambda containers that issue and verify.
LEEWAY_SECONDS = 10
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "username", "iat", "exp", "jti", "sid"]


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says: whose it is and which session it belongs to."""

    user_id: str
    username: str
    session_id: str
    token_id: str
    expires_at: int


def new_id() -> str:
    """A random identifier for users, sessions and tokens (128 bits, URL-safe)."""
    return uuid.uuid4().hex


def is_id(value: str) -> bool:
    """True for the shape ``new_id`` makes; anything else names nothing."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


class AccessTokens:
    """Issues access JWTs with the private key ring and verifies them with the verifying
    keys, each from its own source and cache: a verifier (the authorizer) reads only the
    verifying source, so it never needs the private keys."""

    def __init__(
        self,
        signing: KeySource[KeyRing],
        verifying: KeySource[VerifyingKeys],
        *,
        issuer: str,
        audience: str,
        lifetime: int,
        clock: Callable[[], float],
    ) -> None:
        self.signing = KeyCache(signing, clock)
        self.verifying = KeyCache(verifying, clock)
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self._clock = clock

    @property
    def ring(self) -> VerifyingKeys:
        """The verifying keys: what the JWKS route publishes and the health check reads."""
        return self.verifying.ring

    def secret_key(self) -> bytes:
        """The private ring's data key (read when needed, so a re-read ring counts)."""
        return self.signing.ring.secret_key()

    def issue(self, user_id: str, username: str, session_id: str) -> str:
        now = int(self._clock())
        signer = self.signing.ring.signing
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "username": username,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": new_id(),
            "sid": session_id,
        }
        headers = {"kid": signer.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(claims, signer.private_key, algorithm=ALGORITHM, headers=headers)

    def decode(self, token: str, audience: str, required: list[str]) -> dict[str, Any]:
        """The claims of an ``at+jwt`` this issuer signed for ``audience`` with every
        ``required`` claim, or ``InvalidToken``: the one verification of every kind of
        access token (first-party here, OAuth clients' in oauth/tokens.py)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise errors.InvalidToken()
        try:
            header = jwt.get_unverified_header(token)
            key = self.verifying.verifying_key(str(header.get("kid", "")))
            if key is None or header.get("typ") != ACCESS_TOKEN_TYPE:
                raise errors.InvalidToken()
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": required},
            )
        except jwt.PyJWTError:
            raise errors.InvalidToken() from None
        return claims

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid token, or raise ``InvalidToken``; never anything else."""
        claims = self.decode(token, self.audience, _REQUIRED_CLAIMS)
        if not all(isinstance(claims[c], str) for c in ("sub", "username", "sid", "jti")):
            raise errors.InvalidToken()
        return AccessClaims(
            user_id=claims["sub"],
            username=claims["username"],
            session_id=claims["sid"],
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
        )


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.InvalidToken()
    return token.strip()


@dataclass(frozen=True)
class RefreshToken:
    """An opaque refresh token: ``<user id>.<session id>.<secret>``; only its hash is stored."""

    user_id: str
    session_id: str
    secret: str

    @classmethod
    def new(cls, user_id: str, session_id: str) -> RefreshToken:
        return cls(user_id, session_id, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, value: str) -> RefreshToken:
        parts = value.split(".")
        valid = len(value) <= 256 and len(parts) == 3 and all(parts)
        if not (valid and is_id(parts[0]) and is_id(parts[1])):
            raise errors.InvalidToken("The refresh token is invalid or expired.")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.user_id}.{self.session_id}.{self.secret}"

    @property
    def digest(self) -> str:
        """SHA-256 is enough: the secret is 256 random bits, not a guessable password."""
        return hashlib.sha256(self.secret.encode("utf-8")).hexdigest()
