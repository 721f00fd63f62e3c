"""Export and import lines: what travels, and every way a line can be refused."""

from __future__ import annotations

import json
from typing import Any

import bcrypt
import pytest

from chalicelib.accounts.portability import export_line, import_line
from chalicelib.crypto.passwords import PasswordHasher
from chalicelib.crypto.tokens import is_id, new_id
from chalicelib.store.items import UserRecord

NOW = 1_700_000_000
PLAIN_BCRYPT = bcrypt.hashpw(b"a password from elsewhere", bcrypt.gensalt(4)).decode("ascii")


@pytest.fixture(scope="module")
def gatehouse_hash() -> str:
    return PasswordHasher(cost=4).hash("correct horse battery staple")


def user(password_hash: str, **changes: Any) -> UserRecord:
    fields: dict[str, Any] = {
        "id": new_id(),
        "username": "Alice.Example",
        "username_key": "alice.example",
        "email": "Alice@Example.com",
        "email_key": "alice@example.com",
        "display_name": "Alice Ünïcode",
        "password_hash": password_hash,
        "email_verified": True,
        "mfa_enabled": False,
        "disabled": False,
        "created_at": NOW - 1000,
    }
    return UserRecord(**{**fields, **changes})


def line(**fields: Any) -> str:
    return json.dumps({"username": "bob", "password_hash": PLAIN_BCRYPT, **fields})


# ------------------------------------------------------------------ export and round trip


def test_export_then_import_gives_back_the_same_user(gatehouse_hash: str) -> None:
    original = user(gatehouse_hash)

    assert import_line(export_line(original), NOW + 5) == original


@pytest.mark.parametrize(
    "changes",
    [
        {"email": None, "email_key": None, "email_verified": False},
        {"display_name": None},
        {"disabled": True},
        {"email_verified": False},
    ],
)
def test_the_round_trip_keeps_optional_fields_and_flags(
    gatehouse_hash: str, changes: dict[str, Any]
) -> None:
    original = user(gatehouse_hash, **changes)

    assert import_line(export_line(original), NOW) == original


def test_mfa_does_not_travel(gatehouse_hash: str) -> None:
    original = user(gatehouse_hash, mfa_enabled=True)

    imported = import_line(export_line(original), NOW)

    assert imported.mfa_enabled is False


def test_an_export_line_is_one_json_object_with_the_hash_and_no_secrets(
    gatehouse_hash: str,
) -> None:
    exported = export_line(user(gatehouse_hash))

    assert "\n" not in exported
    raw = json.loads(exported)
    assert set(raw) == {
        "id",
        "username",
        "email",
        "email_verified",
        "display_name",
        "created_at",
        "disabled",
        "password_hash",
    }
    assert raw["password_hash"] == gatehouse_hash
    assert raw["display_name"] == "Alice Ünïcode"
    assert "Ünïcode" in exported  # readable UTF-8, not \\u escapes


def test_an_imported_hash_still_verifies_its_password(gatehouse_hash: str) -> None:
    hasher = PasswordHasher(cost=4)

    imported = import_line(export_line(user(gatehouse_hash)), NOW)

    assert hasher.verify("correct horse battery staple", imported.password_hash)
    assert not hasher.verify("another password", imported.password_hash)


# ------------------------------------------------------------------ import from elsewhere


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_plain_bcrypt_hashes_are_accepted_and_verify(prefix: str) -> None:
    password_hash = prefix + PLAIN_BCRYPT[4:]

    imported = import_line(line(password_hash=password_hash), NOW)

    assert imported.password_hash == password_hash
    hasher = PasswordHasher(cost=4)
    assert hasher.verify("a password from elsewhere", imported.password_hash)
    assert not hasher.verify("a wrong password", imported.password_hash)


def test_a_minimal_line_gets_an_id_a_creation_time_and_defaults() -> None:
    imported = import_line(line(), NOW)

    assert is_id(imported.id)
    assert imported.username == "bob"
    assert imported.username_key == "bob"
    assert imported.created_at == NOW
    assert imported.email is None and imported.email_key is None
    assert imported.display_name is None
    assert imported.email_verified is False
    assert imported.disabled is False
    assert imported.mfa_enabled is False


def test_two_minimal_lines_get_different_ids() -> None:
    assert import_line(line(), NOW).id != import_line(line(), NOW).id


def test_the_username_and_email_are_normalised_like_a_registration() -> None:
    imported = import_line(line(username="\uff21lice", email="  Alice@Example.COM "), NOW)

    assert imported.username == "Alice"
    assert imported.username_key == "alice"
    assert imported.email == "Alice@Example.COM"
    assert imported.email_key == "alice@example.com"


def test_a_given_id_and_creation_time_are_kept() -> None:
    user_id = new_id()

    imported = import_line(line(id=user_id, created_at=NOW - 99), NOW)

    assert (imported.id, imported.created_at) == (user_id, NOW - 99)


def test_null_optional_fields_read_as_absent() -> None:
    imported = import_line(
        line(id=None, email=None, display_name=None, created_at=None, email_verified=None),
        NOW,
    )

    assert is_id(imported.id)
    assert imported.email is None
    assert imported.created_at == NOW
    assert imported.email_verified is False


# ------------------------------------------------------------------ refused lines


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", None),
        ("", None),
        ("[]", "JSON object"),
        ('"bob"', "JSON object"),
        ("null", "JSON object"),
        (json.dumps({"username": "bob"}), "bcrypt"),
        (line(password_hash=None), "bcrypt"),
        (line(password_hash=""), "bcrypt"),
        (line(password_hash="md5$abc"), "bcrypt"),
        (line(password_hash="pbkdf2_sha256$260000$salt$hash"), "bcrypt"),
        (line(password_hash=["$2b$"]), "password_hash"),
        (line(password_hash=5), "password_hash"),
        (line(id="not-an-id"), "'id'"),
        (line(id="A" * 32), "'id'"),
        (line(id=5), "'id'"),
        (line(username=None), "characters"),
        (line(username=""), "characters"),
        (line(username="ab"), "characters"),
        (line(username="has space"), "only"),
        (line(username="at@sign"), "only"),
        (line(username=7), "'username'"),
        (line(email="not-an-email"), "email"),
        (line(email=""), "email"),
        (line(email=["a@b.c"]), "'email'"),
        (line(display_name="bad\u0000name"), "printable"),
        (line(display_name=3), "'display_name'"),
        (line(email_verified="yes"), "'email_verified'"),
        (line(disabled=1), "'disabled'"),
        (line(created_at="2024-01-01"), "'created_at'"),
        (line(created_at=True), "'created_at'"),
        (line(created_at=1.5), "'created_at'"),
    ],
)
def test_a_bad_line_is_refused_with_a_value_error_saying_why(text: str, reason: str | None) -> None:
    with pytest.raises(ValueError, match=reason):
        import_line(text, NOW)
