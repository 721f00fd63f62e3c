"""Password hashing and the password policy: what a user (or an attacker) would notice."""

from __future__ import annotations

import bcrypt
import pytest

from chalicelib.crypto.passwords import PasswordHasher, PasswordPolicy
from chalicelib.platform import errors

#: The lowest bcrypt cost: these tests are about behaviour, not work factor.
COST = 4


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(cost=COST)


def test_a_hashed_password_verifies_and_a_different_one_does_not(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")

    assert hasher.verify("correct horse battery staple", stored)
    assert not hasher.verify("correct horse battery stapler", stored)
    assert not hasher.verify("", stored)


def test_the_stored_hash_does_not_contain_the_password(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")

    assert "correct horse" not in stored


def test_the_same_password_hashes_differently_each_time(hasher: PasswordHasher) -> None:
    first, second = hasher.hash("same password"), hasher.hash("same password")

    assert first != second
    assert hasher.verify("same password", first)
    assert hasher.verify("same password", second)


def test_passwords_sharing_their_first_72_bytes_do_not_verify_as_each_other(
    hasher: PasswordHasher,
) -> None:
    stored = hasher.hash("a" * 72 + "x")

    assert hasher.verify("a" * 72 + "x", stored)
    assert not hasher.verify("a" * 72 + "y", stored)
    assert not hasher.verify("a" * 72, stored)


def test_multibyte_passwords_past_72_bytes_are_told_apart(hasher: PasswordHasher) -> None:
    # 30 snowmen are 90 UTF-8 bytes; they differ only after byte 72.
    stored = hasher.hash("\u2603" * 30 + "1")

    assert hasher.verify("\u2603" * 30 + "1", stored)
    assert not hasher.verify("\u2603" * 30 + "2", stored)


def test_a_1000_character_password_hashes_and_verifies(hasher: PasswordHasher) -> None:
    password = "p" * 999 + "!"

    stored = hasher.hash(password)

    assert hasher.verify(password, stored)
    assert not hasher.verify("p" * 1000, stored)


def test_nfkc_equivalent_passwords_verify_as_one(hasher: PasswordHasher) -> None:
    full_width = "\uff30\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13"  # Password123

    assert hasher.verify("Password123", hasher.hash(full_width))
    assert hasher.verify(full_width, hasher.hash("Password123"))


def test_composed_and_decomposed_accents_verify_as_one(hasher: PasswordHasher) -> None:
    composed, decomposed = "caf\u00e9-secret", "cafe\u0301-secret"

    assert hasher.verify(decomposed, hasher.hash(composed))


def test_an_imported_plain_bcrypt_hash_verifies(hasher: PasswordHasher) -> None:
    imported = bcrypt.hashpw(b"legacy password", bcrypt.gensalt(COST)).decode("ascii")

    assert imported.startswith("$2b$")
    assert hasher.verify("legacy password", imported)
    assert not hasher.verify("legacy passwore", imported)


def test_an_imported_bcrypt_hash_refuses_input_longer_than_72_bytes(
    hasher: PasswordHasher,
) -> None:
    prefix = "b" * 72
    imported = bcrypt.hashpw(prefix.encode(), bcrypt.gensalt(COST)).decode("ascii")

    assert hasher.verify(prefix, imported)
    # Plain bcrypt would compare only the first 72 bytes and say yes.
    assert not hasher.verify(prefix + "anything", imported)
    assert not hasher.verify("\u2603" * 25, imported)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$2b$04$tooshort",
        "$2b$99$" + "a" * 53,
        "bcrypt-sha256$",
        "bcrypt-sha256$garbage",
        "bcrypt-sha256$$2b$04$" + "\u00e9" * 53,
        "\u00e9\u00e8\u2603",
        "\x00" * 60,
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    ],
)
def test_verify_answers_false_for_a_garbage_stored_hash(
    hasher: PasswordHasher, stored: str
) -> None:
    assert hasher.verify("any password", stored) is False


def test_verify_dummy_spends_a_verify_without_raising(hasher: PasswordHasher) -> None:
    hasher.verify_dummy()
    hasher.verify_dummy()


def test_the_policy_accepts_a_password_of_the_minimum_length() -> None:
    PasswordPolicy(min_length=8, max_length=256).check("q7#Vbn2x")


def test_the_policy_refuses_a_short_password_with_a_too_short_field_error() -> None:
    with pytest.raises(errors.WeakPassword) as raised:
        PasswordPolicy(min_length=8, max_length=256).check("q7#Vbn2")

    assert raised.value.status == 400
    assert raised.value.code == "weak_password"
    assert [(e.field, e.code) for e in raised.value.errors] == [("password", "too_short")]


def test_the_policy_refuses_a_long_password_with_a_too_long_field_error() -> None:
    with pytest.raises(errors.WeakPassword) as raised:
        PasswordPolicy(min_length=8, max_length=256).check("x" * 257)

    assert [(e.field, e.code) for e in raised.value.errors] == [("password", "too_long")]


def test_the_policy_counts_characters_after_nfkc() -> None:
    policy = PasswordPolicy(min_length=8, max_length=256)

    # U+FB03 (the "ffi" ligature) is one character that NFKC makes three.
    policy.check("\ufb03\ufb03\ufb03")
    with pytest.raises(errors.WeakPassword):
        policy.check("\ufb03\ufb03")
