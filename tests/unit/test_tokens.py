"""Access JWTs, bearer headers, refresh tokens and the local key file.

Every forged or foreign token must fail as ``InvalidToken`` (and nothing else), because
the authorizer turns exactly that into a 401; any other exception would be a 503 or a crash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from chalicelib.crypto.keys import (
    KeyRing,
    LocalKeyFile,
    PublicPart,
    new_private_pem,
    ring_from_pems,
    thumbprint,
)
from chalicelib.crypto.tokens import (
    MAX_TOKEN_LENGTH,
    AccessTokens,
    RefreshToken,
    bearer_token,
    new_id,
)
from chalicelib.platform import errors

ISSUER = "gatehouse-test"
AUDIENCE = "gatehouse-test-api"
LIFETIME = 900


class StaticKeys:
    """A ``KeySource`` that hands out a ring built in the test."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def load(self) -> KeyRing:
        return self.ring


def make_tokens(ring: KeyRing, *, now: float | None = None) -> AccessTokens:
    clock = (lambda: now) if now is not None else time.time
    keys = StaticKeys(ring)
    return AccessTokens(
        keys, PublicPart(keys), issuer=ISSUER, audience=AUDIENCE, lifetime=LIFETIME, clock=clock
    )


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return ring_from_pems([new_private_pem()])


@pytest.fixture(scope="module")
def foreign_ring() -> KeyRing:
    return ring_from_pems([new_private_pem()])


@pytest.fixture
def tokens(ring: KeyRing) -> AccessTokens:
    return make_tokens(ring)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def b64url_decode_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "username": "alice",
        "iat": now,
        "exp": now + LIFETIME,
        "jti": "token-1",
        "sid": "session-1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(ring: KeyRing, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """A token signed by ``ring``'s real key, with whatever claims and headers a test wants."""
    chosen = {"kid": ring.signing.kid, "typ": "at+jwt", **(headers or {})}
    return jwt.encode(claims, ring.signing.private_key, algorithm="RS256", headers=chosen)


def public_pem(ring: KeyRing) -> bytes:
    return ring.signing.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rs256_by_hand(ring: KeyRing, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign exactly ``header`` (pyjwt would add ``typ: JWT`` on its own)."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = ring.signing.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64url(signature)}"


# ------------------------------------------------------------------ valid tokens


def test_an_issued_token_verifies_to_its_user_and_session(tokens: AccessTokens) -> None:
    token = tokens.issue("user-42", "Alice", "session-7")

    claims = tokens.verify(token)

    assert (claims.user_id, claims.username, claims.session_id) == ("user-42", "Alice", "session-7")
    assert claims.token_id
    assert claims.expires_at > time.time()


def test_an_issued_token_carries_the_contract_claims_and_headers(
    tokens: AccessTokens, ring: KeyRing
) -> None:
    before = int(time.time())
    token = tokens.issue("user-42", "Alice", "session-7")

    header = jwt.get_unverified_header(token)
    payload = b64url_decode_json(token.split(".")[1])

    assert header["kid"] == ring.signing.kid
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert set(payload) >= {"iss", "aud", "sub", "username", "iat", "exp", "jti", "sid"}
    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE
    assert payload["sub"] == "user-42"
    assert payload["username"] == "Alice"
    assert payload["sid"] == "session-7"
    assert payload["exp"] - payload["iat"] == LIFETIME
    assert payload["iat"] >= before


def test_every_issued_token_has_its_own_jti(tokens: AccessTokens) -> None:
    first = tokens.verify(tokens.issue("u", "alice", "s"))
    second = tokens.verify(tokens.issue("u", "alice", "s"))

    assert first.token_id != second.token_id


def test_a_token_signed_by_an_older_key_still_in_the_ring_verifies() -> None:
    old, new = new_private_pem(), new_private_pem()
    old_tokens = make_tokens(ring_from_pems([old]))
    rotated = make_tokens(ring_from_pems([old, new]))

    token = old_tokens.issue("user-1", "alice", "session-1")

    assert rotated.signing.ring.signing.kid != old_tokens.signing.ring.signing.kid
    assert rotated.verify(token).user_id == "user-1"


# ------------------------------------------------------------------ forged tokens


def assert_refused(tokens: AccessTokens, token: str) -> None:
    with pytest.raises(errors.InvalidToken):
        tokens.verify(token)


def test_a_token_with_a_tampered_signature_is_refused(tokens: AccessTokens) -> None:
    header, payload, signature = tokens.issue("user-1", "alice", "s").split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert_refused(tokens, f"{header}.{payload}.{flipped}")


def test_a_token_with_a_tampered_payload_is_refused(tokens: AccessTokens) -> None:
    header, _, signature = tokens.issue("user-1", "alice", "s").split(".")
    forged = b64url_json(valid_claims(sub="admin"))

    assert_refused(tokens, f"{header}.{forged}.{signature}")


def test_a_token_with_alg_none_is_refused(tokens: AccessTokens, ring: KeyRing) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": ring.signing.kid}
    token = f"{b64url_json(header)}.{b64url_json(valid_claims())}."

    assert_refused(tokens, token)


def test_a_token_signed_hs256_with_the_public_key_as_secret_is_refused(
    tokens: AccessTokens, ring: KeyRing
) -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": ring.signing.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(valid_claims())}"
    mac = hmac.new(public_pem(ring), signing_input.encode("ascii"), hashlib.sha256).digest()

    assert_refused(tokens, f"{signing_input}.{b64url(mac)}")


def test_an_expired_token_is_refused(ring: KeyRing) -> None:
    an_hour_ago = time.time() - 3600
    token = make_tokens(ring, now=an_hour_ago).issue("user-1", "alice", "s")

    assert_refused(make_tokens(ring), token)


def test_a_token_issued_in_the_future_beyond_the_leeway_is_refused(ring: KeyRing) -> None:
    token = signed(ring, valid_claims(iat=int(time.time()) + 3600))

    assert_refused(make_tokens(ring), token)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "someone-else"),
        ("aud", "another-api"),
        ("iss", None),
        ("aud", None),
        ("exp", None),
        ("sub", None),
        ("sid", None),
        ("jti", None),
        ("username", None),
        ("iat", None),
        ("sub", 42),
        ("sid", ["session-1"]),
    ],
)
def test_a_token_with_a_wrong_or_missing_claim_is_refused(
    tokens: AccessTokens, ring: KeyRing, claim: str, value: Any
) -> None:
    claims = valid_claims(**{claim: value})
    if value is None:
        assert claim not in claims

    assert_refused(tokens, signed(ring, claims))


def test_a_correctly_signed_token_with_every_claim_right_verifies(
    tokens: AccessTokens, ring: KeyRing
) -> None:
    # The control for the forged-token tests: the same helper, nothing wrong.
    assert tokens.verify(signed(ring, valid_claims())).user_id == "user-1"


def test_a_token_without_a_kid_is_refused(tokens: AccessTokens, ring: KeyRing) -> None:
    token = jwt.encode(
        valid_claims(), ring.signing.private_key, algorithm="RS256", headers={"typ": "at+jwt"}
    )

    assert "kid" not in jwt.get_unverified_header(token)
    assert_refused(tokens, token)


def test_a_token_with_an_unknown_kid_is_refused(ring: KeyRing, foreign_ring: KeyRing) -> None:
    foreign = make_tokens(foreign_ring).issue("user-1", "alice", "s")

    assert_refused(make_tokens(ring), foreign)


def test_a_token_signed_by_a_foreign_key_under_our_kid_is_refused(
    ring: KeyRing, foreign_ring: KeyRing
) -> None:
    token = jwt.encode(
        valid_claims(),
        foreign_ring.signing.private_key,
        algorithm="RS256",
        headers={"kid": ring.signing.kid, "typ": "at+jwt"},
    )

    assert_refused(make_tokens(ring), token)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "refresh+jwt", ""])
def test_a_token_without_the_access_token_type_is_refused(
    tokens: AccessTokens, ring: KeyRing, typ: str | None
) -> None:
    header: dict[str, Any] = {"alg": "RS256", "kid": ring.signing.kid}
    if typ is not None:
        header["typ"] = typ

    assert_refused(tokens, rs256_by_hand(ring, header, valid_claims()))


def test_a_hand_signed_token_with_the_right_type_verifies(
    tokens: AccessTokens, ring: KeyRing
) -> None:
    # The control for the type tests: the same hand signing, the right header.
    header = {"alg": "RS256", "kid": ring.signing.kid, "typ": "at+jwt"}

    assert tokens.verify(rs256_by_hand(ring, header, valid_claims())).session_id == "session-1"


def test_a_refresh_token_presented_as_an_access_token_is_refused(tokens: AccessTokens) -> None:
    assert_refused(tokens, str(RefreshToken.new("user-1", "session-1")))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x" * 10 * 1024,
        "not-a-jwt",
        "a.b.c",
        "a.b",
        "....",
        "\u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9",
        "eyJhbGciOiJSUzI1NiJ9",
        "eyJ9.eyJ9.eyJ9",
        b64url(b"[1,2]") + "." + b64url(b"{}") + ".sig",
        b64url_json({"alg": "RS256", "kid": 7, "typ": "at+jwt"}) + "." + b64url(b"{}") + ".sig",
        "Bearer " + "a.b.c",
        "\x00\x01\x02",
    ],
    ids=lambda t: repr(t[:24]),
)
def test_a_malformed_token_is_refused_as_invalid_token(tokens: AccessTokens, token: str) -> None:
    assert_refused(tokens, token)


def test_a_token_just_over_the_length_limit_is_refused(tokens: AccessTokens) -> None:
    real = tokens.issue("user-1", "alice", "s")
    padded = real + "A" * (MAX_TOKEN_LENGTH + 1 - len(real))

    assert len(padded) == MAX_TOKEN_LENGTH + 1
    assert_refused(tokens, padded)


# ------------------------------------------------------------------ bearer header


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc.def.ghi", "abc.def.ghi"),
        ("  Bearer   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_token_reads_the_token_from_an_authorization_header(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "abc.def"]
)
def test_bearer_token_refuses_a_header_without_a_bearer_token(header: str) -> None:
    with pytest.raises(errors.InvalidToken):
        bearer_token(header)


# ------------------------------------------------------------------ refresh tokens


def test_a_refresh_token_survives_a_string_round_trip() -> None:
    token = RefreshToken.new(new_id(), new_id())

    parsed = RefreshToken.parse(str(token))

    assert parsed == token
    assert parsed.digest == token.digest


def test_refresh_tokens_are_unguessable_and_their_digest_hides_the_secret() -> None:
    first, second = RefreshToken.new("u", "s"), RefreshToken.new("u", "s")

    assert first.secret != second.secret
    assert len(first.secret) >= 43  # 32 random bytes, base64url
    assert first.secret not in first.digest
    assert first.digest != second.digest


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a..c",
        ".b.c",
        "a.b.",
        "..",
        "u.s." + "x" * 300,
        # ids must have the shape new_id() makes: an access token is three parts too
        "user-1.session-1.secret",
        f"{'A' * 32}.{'b' * 32}.secret",
    ],
)
def test_a_malformed_refresh_token_is_refused(value: str) -> None:
    with pytest.raises(errors.InvalidToken):
        RefreshToken.parse(value)


# ------------------------------------------------------------------ the local key file


def expected_kid(ring: KeyRing) -> str:
    """RFC 7638 computed independently: pyjwt's JWK, required members sorted, SHA-256."""
    jwk = RSAAlgorithm.to_jwk(ring.signing.private_key.public_key(), as_dict=True)
    assert isinstance(jwk, dict)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-keys.json"

    LocalKeyFile(path).load()

    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["signing-keys.json"]  # no temp files left


def test_the_key_file_is_reused_on_the_next_load(tmp_path: Path) -> None:
    path = tmp_path / "signing-keys.json"
    first = LocalKeyFile(path).load()
    contents = path.read_bytes()

    second = LocalKeyFile(path).load()

    assert second.signing.kid == first.signing.kid
    assert path.read_bytes() == contents


def test_a_token_issued_before_a_restart_verifies_after_it(tmp_path: Path) -> None:
    path = tmp_path / "signing-keys.json"
    token = make_tokens(LocalKeyFile(path).load()).issue("user-1", "alice", "s")

    assert make_tokens(LocalKeyFile(path).load()).verify(token).user_id == "user-1"


def test_the_kid_is_the_rfc7638_thumbprint_of_the_public_key(tmp_path: Path) -> None:
    ring = LocalKeyFile(tmp_path / "signing-keys.json").load()

    assert ring.signing.kid == expected_kid(ring)
    assert set(ring.verifying) == {ring.signing.kid}


def test_the_thumbprint_matches_the_rfc7638_example() -> None:
    # RFC 7638, section 3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhA"
        "I4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )

    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    key = rsa.RSAPublicNumbers(number("AQAB"), number(n)).public_key()

    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_ring_signs_with_the_named_kid_or_else_the_last_key() -> None:
    first, second = new_private_pem(), new_private_pem()
    by_default = ring_from_pems([first, second])
    first_kid = ring_from_pems([first]).signing.kid

    named = ring_from_pems([first, second], signing_kid=first_kid)

    assert by_default.signing.kid == ring_from_pems([second]).signing.kid
    assert named.signing.kid == first_kid
    assert set(named.verifying) == set(by_default.verifying)
    assert len(named.verifying) == 2


def test_an_empty_key_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ring_from_pems([])
