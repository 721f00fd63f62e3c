"""The tokens Gatehouse issues to OAuth clients: RFC 9068 access tokens and ID tokens.

Both are RS256 JWTs signed by the same key ring as first-party tokens (so rotation with
no logout still holds, and clients verify them with the same JWKS). The two kinds of
access token cannot stand in for each other: a client's token has the audience
``<issuer>/oauth2/userinfo`` (its default resource: RFC 9068 asks for one) and no
``username``, so the first-party authorizer (audience ``TOKEN_AUDIENCE``) refuses it,
and this module refuses a first-party token (no ``client_id``, another audience).

No authlib here: userinfo verifies with this module alone, so it pays for no import of
the protocol library.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from chalicelib.crypto.keys import ALGORITHM
from chalicelib.crypto.tokens import ACCESS_TOKEN_TYPE, MAX_TOKEN_LENGTH, AccessTokens, new_id
from chalicelib.platform import errors
from chalicelib.store.items import AuthorizationCode

_ACCESS_CLAIMS = ["iss", "aud", "sub", "client_id", "scope", "iat", "exp", "jti", "sid"]


@dataclass(frozen=True)
class ClientAccess:
    """What a verified client access token says."""

    user_id: str
    client_id: str
    scope: str
    session_id: str
    issued_at: int
    expires_at: int

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


def half_hash(value: str) -> str:
    """OIDC's ``at_hash`` for RS256: base64url of the left half of SHA-256(value)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def user_claims(
    scopes: frozenset[str],
    *,
    username: str,
    email: str | None,
    email_verified: bool,
    display_name: str | None,
) -> dict[str, Any]:
    """The claims of the granted scopes (OIDC Core 5.4): the ID token's (from what the
    code recorded) and userinfo's (from the user item) are the same mapping."""
    claims: dict[str, Any] = {}
    if "email" in scopes and email:
        claims["email"] = email
        claims["email_verified"] = email_verified
    if "profile" in scopes:
        claims["preferred_username"] = username
        if display_name:
            claims["name"] = display_name
    return claims


class ClientTokens:
    """Signs and verifies the tokens of OAuth clients with the first-party key ring."""

    def __init__(self, tokens: AccessTokens, clock: Callable[[], float]) -> None:
        self._tokens = tokens
        self._clock = clock
        self.issuer = tokens.issuer
        self.audience = f"{tokens.issuer}/oauth2/userinfo"
        self.lifetime = tokens.lifetime

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        signer = self._tokens.signing.ring.signing
        headers = {"kid": signer.kid, "typ": typ}
        return jwt.encode(claims, signer.private_key, algorithm=ALGORITHM, headers=headers)

    def access_token(self, *, user_id: str, client_id: str, scope: str, session_id: str) -> str:
        """An RFC 9068 access token; ``sub`` is the user (or, for client_credentials, the
        client), ``sid`` the session whose end ends it."""
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": new_id(),
            "sid": session_id,
        }
        return self._sign(claims, ACCESS_TOKEN_TYPE)

    def id_token(self, code: AuthorizationCode, access_token: str) -> str:
        """The ID token of a code exchange (OIDC Core 2 and 3.1.3.6)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": code.user_id,
            "aud": code.client_id,
            "azp": code.client_id,
            "iat": now,
            "exp": now + self.lifetime,
            "auth_time": code.auth_time,
            "at_hash": half_hash(access_token),
            "sid": code.session_id,
        }
        if code.nonce:
            claims["nonce"] = code.nonce
        scopes = frozenset(code.scope.split())
        claims.update(
            user_claims(
                scopes,
                username=code.username,
                email=code.email,
                email_verified=code.email_verified,
                display_name=code.display_name,
            )
        )
        return self._sign(claims, "JWT")

    def verify_access_token(self, token: str) -> ClientAccess:
        """The claims of a valid client access token, or ``InvalidToken``."""
        claims = self._tokens.decode(token, self.audience, _ACCESS_CLAIMS)
        if not all(isinstance(claims[c], str) for c in ("sub", "client_id", "scope", "sid")):
            raise errors.InvalidToken()
        return ClientAccess(
            user_id=claims["sub"],
            client_id=claims["client_id"],
            scope=claims["scope"],
            session_id=claims["sid"],
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )

    def id_token_hint(self, hint: str) -> dict[str, Any] | None:
        """The claims of an ID token this issuer signed, expired or not (OIDC RP-Initiated
        Logout 2: a hint may be used after it expired); None for anything else."""
        if not hint or len(hint) > MAX_TOKEN_LENGTH:
            return None
        try:
            header = jwt.get_unverified_header(hint)
            key = self._tokens.verifying.verifying_key(str(header.get("kid", "")))
            if key is None or header.get("typ") != "JWT":
                return None
            claims: dict[str, Any] = jwt.decode(
                hint,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"verify_exp": False, "verify_aud": False, "require": ["sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims["aud"], str) and isinstance(claims["sub"], str) else None
