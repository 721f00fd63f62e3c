"""The key document (rotate, retire, parse/dumps) and the key cache's re-read rules.

The cache tests use a real key file and a clock the test moves by hand: a rotation
written to the file is either seen (the ring was re-read) or not.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.crypto.keys import (
    KeyCache,
    KeyDocument,
    KeyRing,
    KeySource,
    LocalKeyFile,
    PublicPart,
    StoredKey,
    VerifyingKeys,
    new_private_pem,
    ring_from_pems,
    thumbprint,
)
from chalicelib.crypto.tokens import AccessTokens
from chalicelib.platform import errors

#: Near the real time: PyJWT checks expiry against the real clock, not ours.
NOW = int(time.time())
MAX_AGE = 300.0
RELOAD_GAP = 30.0


@pytest.fixture(scope="module")
def document() -> KeyDocument:
    return KeyDocument.new(NOW)


@pytest.fixture(scope="module")
def rotated(document: KeyDocument) -> KeyDocument:
    return document.rotated(NOW + 60)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ the document


def test_a_new_document_has_one_key_that_signs(document: KeyDocument) -> None:
    (key,) = document.keys
    assert document.signing_kid == key.kid
    assert key.created_at == NOW
    ring = document.ring()
    assert ring.signing.kid == key.kid
    assert thumbprint(ring.signing.private_key.public_key()) == key.kid
    assert set(ring.verifying) == {key.kid}


def test_rotated_adds_a_key_that_signs_and_keeps_the_old_ones(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    kept = rotated.keys[: len(document.keys)]
    # The old keys stay; the one that signed records when it stopped (for retirement).
    assert tuple(replace(k, signed_until=0) for k in kept) == document.keys
    assert [k.signed_until for k in kept if k.kid == document.signing_kid] == [NOW + 60]
    assert len(rotated.keys) == len(document.keys) + 1
    new = rotated.keys[-1]
    assert rotated.signing_kid == new.kid != document.signing_kid
    assert new.created_at == NOW + 60
    ring = rotated.ring()
    assert ring.signing.kid == new.kid
    assert set(ring.verifying) == {document.signing_kid, new.kid}


def test_rotated_leaves_the_original_document_unchanged(document: KeyDocument) -> None:
    before = document.dumps()

    document.rotated(NOW + 1)

    assert document.dumps() == before
    assert len(document.keys) == 1


def test_each_rotation_makes_a_different_key(document: KeyDocument) -> None:
    first, second = document.rotated(NOW), document.rotated(NOW)

    assert first.signing_kid != second.signing_kid


def test_a_token_signed_before_a_rotation_verifies_with_the_rotated_ring(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    old = tokens_on(StaticKeys(document))
    new = tokens_on(StaticKeys(rotated))

    claims = new.verify(old.issue("u" * 32, "alice", "s" * 32))

    assert claims.username == "alice"


def test_retired_drops_an_old_key_and_keeps_the_signer(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    retired = rotated.retired(document.signing_kid)

    assert [k.kid for k in retired.keys] == [rotated.signing_kid]
    assert retired.signing_kid == rotated.signing_kid
    assert set(retired.ring().verifying) == {rotated.signing_kid}


def test_a_token_signed_by_a_retired_key_no_longer_verifies(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    token = tokens_on(StaticKeys(document)).issue("u" * 32, "alice", "s" * 32)
    after = tokens_on(StaticKeys(rotated.retired(document.signing_kid)))

    with pytest.raises(errors.InvalidToken):
        after.verify(token)


def test_rotation_and_retirement_keep_the_data_key(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    # The data key seals secrets kept in the table (TOTP): losing it in a rotation would
    # lock every MFA user out.
    data_key = base64.b64decode(document.data_key)
    assert len(data_key) == 32

    assert rotated.data_key == document.data_key
    assert rotated.retired(document.signing_kid).data_key == document.data_key
    assert rotated.ring().data_key == data_key


def test_retired_refuses_the_signing_key(rotated: KeyDocument) -> None:
    with pytest.raises(ValueError, match="signing key cannot be retired"):
        rotated.retired(rotated.signing_kid)


def test_retired_refuses_the_only_key(document: KeyDocument) -> None:
    with pytest.raises(ValueError, match="signing key"):
        document.retired(document.signing_kid)


@pytest.mark.parametrize("kid", ["no-such-kid", "", "x" * 43])
def test_retired_refuses_an_unknown_kid(rotated: KeyDocument, kid: str) -> None:
    with pytest.raises(ValueError, match="no key"):
        rotated.retired(kid)


def test_parse_and_dumps_round_trip(rotated: KeyDocument) -> None:
    text = rotated.dumps()

    parsed = KeyDocument.parse(text)

    assert parsed == rotated
    assert parsed.dumps() == text
    assert parsed.ring().signing.kid == rotated.signing_kid


def test_dumps_is_the_documented_json_shape(rotated: KeyDocument) -> None:
    raw = json.loads(rotated.dumps())

    assert raw["signing_kid"] == rotated.signing_kid
    assert raw["next_kid"] == ""
    members = {"kid", "private_pem", "created_at", "published_at", "signed_until"}
    assert [set(k) for k in raw["keys"]] == [members] * 2
    assert [k["kid"] for k in raw["keys"]] == [k.kid for k in rotated.keys]


def test_parse_fills_in_a_missing_kid_and_created_at() -> None:
    pem = new_private_pem()
    text = json.dumps({"keys": [{"private_pem": pem}]})

    parsed = KeyDocument.parse(text)

    kid = thumbprint(ring_from_pems([pem]).signing.private_key.public_key())
    assert parsed.keys == (StoredKey(kid, pem, 0),)
    assert parsed.signing_kid == kid


@pytest.mark.parametrize("signing_kid", [None, "", "unknown-kid"])
def test_parse_makes_the_last_key_sign_when_the_signer_is_missing_or_unknown(
    rotated: KeyDocument, signing_kid: str | None
) -> None:
    raw = json.loads(rotated.dumps())
    raw["signing_kid"] = signing_kid

    parsed = KeyDocument.parse(json.dumps(raw))

    assert parsed.signing_kid == rotated.keys[-1].kid


def test_parse_keeps_an_older_key_as_the_signer_when_named(rotated: KeyDocument) -> None:
    raw = json.loads(rotated.dumps())
    raw["signing_kid"] = rotated.keys[0].kid

    parsed = KeyDocument.parse(json.dumps(raw))

    assert parsed.signing_kid == rotated.keys[0].kid
    assert parsed.ring().signing.kid == rotated.keys[0].kid


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", ValueError),
        ('{"keys": []}', ValueError),
        ("{}", KeyError),
        ('{"keys": [{"kid": "k"}]}', KeyError),
        ('{"keys": [{"kid": "k", "private_pem": "not a pem"}]}', ValueError),
        # Valid JSON of the wrong shape: a ValueError too, never a TypeError (a 500).
        ("[]", ValueError),
        ("null", ValueError),
        ('{"keys": "abc"}', ValueError),
        ('{"keys": [{"kid": "k", "private_pem": 5}]}', ValueError),
        ('{"keys": [{"kid": "k", "private_pem": "x", "created_at": []}]}', ValueError),
    ],
)
def test_parse_refuses_a_broken_document(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        KeyDocument.parse(text).ring()


# ------------------------------------------------------------------ the cache


class StaticKeys:
    """A key source that always hands out one document's ring."""

    def __init__(self, document: KeyDocument) -> None:
        self.document = document

    def load(self) -> KeyRing:
        return self.document.ring()


def tokens_on(source: KeySource[KeyRing], clock: Clock | None = None) -> AccessTokens:
    """Tokens that sign with ``source``'s ring and verify with its public part, as the
    local stage's do."""
    return AccessTokens(
        source,
        PublicPart(source),
        issuer="gatehouse-test",
        audience="gatehouse-test-api",
        lifetime=900,
        clock=clock or Clock(),
    )


@pytest.fixture
def key_file(tmp_path: Path, document: KeyDocument) -> LocalKeyFile:
    file = LocalKeyFile(tmp_path / "keys.json")
    file.write(document)
    return file


def rotate(file: LocalKeyFile) -> str:
    """Rotate the file's ring, as the admin command would from elsewhere; the new kid."""
    rotated = file.read().rotated(NOW)
    file.write(rotated)
    return rotated.signing_kid


def test_the_ring_is_read_once_and_then_served_from_memory(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    rotate(key_file)

    clock.now += MAX_AGE - 1

    assert cache.ring.signing.kid == document.signing_kid


def test_after_max_age_the_ring_is_read_again(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    new_kid = rotate(key_file)

    clock.now += MAX_AGE + 1

    assert cache.ring.signing.kid == new_kid
    assert set(cache.ring.verifying) == {document.signing_kid, new_kid}


def test_an_unknown_kid_makes_the_cache_read_the_source_again(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    new_kid = rotate(key_file)
    clock.now += RELOAD_GAP + 1

    assert cache.verifying_key(new_kid) is not None
    # The re-read replaced the whole ring, well before max_age.
    assert cache.ring.signing.kid == new_kid


def test_a_second_unknown_kid_within_the_gap_does_not_read_again(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    clock.now += RELOAD_GAP + 1
    assert cache.verifying_key("random-kid-1") is None  # re-read, found nothing
    newer_kid = rotate(key_file)

    clock.now += RELOAD_GAP - 1
    assert cache.verifying_key("random-kid-2") is None
    assert cache.verifying_key(newer_kid) is None  # not re-read: within the gap
    assert cache.ring.signing.kid == document.signing_kid

    clock.now += 2
    assert cache.verifying_key(newer_kid) is not None


def test_an_unknown_kid_right_after_a_read_waits_for_the_gap(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    new_kid = rotate(key_file)

    assert cache.verifying_key(new_kid) is None

    clock.now += RELOAD_GAP + 1
    assert cache.verifying_key(new_kid) is not None


def test_a_known_kid_never_reads_again(key_file: LocalKeyFile, document: KeyDocument) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.verifying_key(document.signing_kid) is not None
    rotate(key_file)
    clock.now += RELOAD_GAP + 1

    assert cache.verifying_key(document.signing_kid) is not None
    assert cache.ring.signing.kid == document.signing_kid


@pytest.mark.parametrize("broken", ["not json", "{}", '{"keys": []}'])
def test_a_failed_read_keeps_the_last_good_ring(
    key_file: LocalKeyFile, document: KeyDocument, broken: str
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    key_file.path.write_text(broken, "utf-8")

    clock.now += MAX_AGE + 1
    assert cache.ring.signing.kid == document.signing_kid
    clock.now += RELOAD_GAP + 1
    assert cache.verifying_key("unknown-kid") is None
    assert cache.verifying_key(document.signing_kid) is not None


def test_the_cache_recovers_once_the_source_is_readable_again(
    key_file: LocalKeyFile, document: KeyDocument, rotated: KeyDocument
) -> None:
    clock = Clock()
    cache = KeyCache(key_file, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.ring.signing.kid == document.signing_kid
    key_file.path.write_text("not json", "utf-8")
    clock.now += MAX_AGE + 1
    assert cache.ring.signing.kid == document.signing_kid

    key_file.write(rotated)
    clock.now += MAX_AGE + 1

    assert cache.ring.signing.kid == rotated.signing_kid


def test_a_first_read_that_fails_is_service_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("not json", "utf-8")
    cache = KeyCache(LocalKeyFile(path), Clock())

    with pytest.raises(errors.ServiceUnavailable):
        _ = cache.ring


def test_a_token_from_a_rotated_container_verifies_here_after_the_gap(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    clock = Clock()
    here = tokens_on(key_file, clock)
    old_token = here.issue("u" * 32, "alice", "s" * 32)
    assert here.verify(old_token).username == "alice"  # a warm container: keys read
    rotate(key_file)
    elsewhere = tokens_on(key_file, Clock(clock.now))  # a container started after the rotation
    new_token = elsewhere.issue("u" * 32, "alice", "s" * 32)

    with pytest.raises(errors.InvalidToken):
        here.verify(new_token)  # within the gap: the new kid is not looked up yet
    clock.now += RELOAD_GAP + 1

    assert here.verify(new_token).username == "alice"
    assert here.verify(old_token).username == "alice"


# ------------------------------------------------------------------ the public keys


def jwk_set(document: KeyDocument) -> dict[str, Any]:
    """The document's public JWK Set, as the public keys' secret holds it."""
    return document.ring().public().jwks()


def test_the_public_part_holds_every_verifying_key_and_nothing_that_signs(
    rotated: KeyDocument,
) -> None:
    public = rotated.ring().public()

    assert type(public) is VerifyingKeys
    assert set(public.verifying) == {k.kid for k in rotated.keys}
    assert public.jwks() == rotated.ring().jwks()
    for jwk in public.jwks()["keys"]:
        assert set(jwk) == {"kty", "kid", "alg", "use", "n", "e"}


def test_a_jwk_set_round_trips(rotated: KeyDocument) -> None:
    public = rotated.ring().public()

    parsed = VerifyingKeys.parse(public.dumps())

    assert parsed == public
    assert parsed.dumps() == public.dumps()


def test_a_token_verifies_through_the_public_part_of_its_ring(
    key_file: LocalKeyFile, document: KeyDocument
) -> None:
    tokens = tokens_on(key_file)
    token = tokens.issue("u" * 32, "alice", "s" * 32)

    assert tokens.verify(token).username == "alice"
    assert set(tokens.ring.verifying) == {document.signing_kid}
    assert type(tokens.ring) is VerifyingKeys


def _one_key(document: KeyDocument, **changes: Any) -> str:
    """The document's JWK Set with its one key's members changed (``None`` drops one)."""
    raw = jwk_set(document)
    [jwk] = raw["keys"]
    for name, value in changes.items():
        if value is None:
            jwk.pop(name)
        else:
            jwk[name] = value
    return json.dumps(raw)


PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth"]


@pytest.mark.parametrize("member", PRIVATE_MEMBERS)
def test_a_jwk_set_with_a_private_member_is_refused(document: KeyDocument, member: str) -> None:
    with pytest.raises(ValueError, match="private"):
        VerifyingKeys.parse(_one_key(document, **{member: "AQAB"}))


@pytest.mark.parametrize(
    "changes",
    [
        {"alg": "RS512"},
        {"alg": "HS256"},
        {"alg": "none"},
        {"alg": "ES256"},
        {"alg": None},
        {"kty": "EC"},
        {"kty": "oct"},
        {"use": "enc"},
    ],
)
def test_a_jwk_set_with_a_key_that_is_not_rs256_is_refused(
    document: KeyDocument, changes: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="RS256"):
        VerifyingKeys.parse(_one_key(document, **changes))


def _short_key() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505  # refused: the point
    numbers = key.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    return {
        "kty": "RSA",
        "kid": thumbprint(key),
        "alg": "RS256",
        "use": "sig",
        "n": b64(numbers.n),
        "e": b64(numbers.e),
    }


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "null",
        "[]",
        "{}",
        '{"keys": []}',
        '{"keys": {}}',
        '{"keys": ["a"]}',
        '{"keys": [{}]}',
        json.dumps({"keys": [_short_key()]}),
    ],
)
def test_a_malformed_jwk_set_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        VerifyingKeys.parse(text)


@pytest.mark.parametrize(
    "changes",
    [
        {"kid": "another-kid"},
        {"kid": None},
        {"kid": 5},
        {"n": None},
        {"n": 5},
        {"e": "AQAB="},  # padding
        {"e": "AAEAAQ"},  # a leading zero octet
        {"e": "AQ$AB"},  # a character outside base64url
        {"e": "Ag"},  # even: not an RSA exponent
        {"x5c": ["MIIB"]},  # a member we never write
    ],
)
def test_a_jwk_whose_members_are_wrong_is_refused(
    document: KeyDocument, changes: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        VerifyingKeys.parse(_one_key(document, **changes))


def test_a_jwk_set_naming_a_key_twice_is_refused(document: KeyDocument) -> None:
    raw = jwk_set(document)
    raw["keys"] *= 2

    with pytest.raises(ValueError, match="twice"):
        VerifyingKeys.parse(json.dumps(raw))


class StaticJwks:
    """A verifying key source that hands out whatever JWK Set text it holds now."""

    def __init__(self, text: str) -> None:
        self.text = text

    def load(self) -> VerifyingKeys:
        return VerifyingKeys.parse(self.text)


def test_an_unknown_kid_rereads_the_verifying_source(
    document: KeyDocument, rotated: KeyDocument
) -> None:
    clock = Clock()
    source = StaticJwks(json.dumps(jwk_set(document)))
    cache = KeyCache(source, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.verifying_key(document.signing_kid) is not None
    source.text = json.dumps(jwk_set(rotated))

    assert cache.verifying_key(rotated.signing_kid) is None  # within the gap
    clock.now += RELOAD_GAP + 1
    assert cache.verifying_key(rotated.signing_kid) is not None


def test_a_broken_jwk_set_keeps_the_last_verifying_keys(document: KeyDocument) -> None:
    clock = Clock()
    source = StaticJwks(json.dumps(jwk_set(document)))
    cache = KeyCache(source, clock, max_age=MAX_AGE, reload_gap=RELOAD_GAP)
    assert cache.verifying_key(document.signing_kid) is not None
    source.text = _one_key(document, d="AQAB")  # a private key slipped in

    clock.now += MAX_AGE + 1

    assert set(cache.ring.verifying) == {document.signing_kid}


def test_a_first_broken_jwk_set_is_service_unavailable(document: KeyDocument) -> None:
    cache = KeyCache(StaticJwks(_one_key(document, alg="HS256")), Clock())

    with pytest.raises(errors.ServiceUnavailable):
        cache.verifying_key(document.signing_kid)
