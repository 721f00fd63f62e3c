"""Usernames, emails and display names: what is accepted, and which spellings are one account."""

from __future__ import annotations

import pytest

from chalicelib.accounts import identity
from chalicelib.platform import errors


def field_error(raised: pytest.ExceptionInfo[errors.ValidationError]) -> tuple[str, str]:
    assert raised.value.code == "validation_error"
    assert raised.value.status == 400
    assert len(raised.value.errors) == 1
    problem = raised.value.errors[0]
    return problem.field, problem.code


# ------------------------------------------------------------------ username keys


def test_case_and_full_width_spellings_of_a_username_share_one_key() -> None:
    keys = {identity.username_key(name) for name in ("Alice", "ALICE", "alice", "\uff21lice")}

    assert keys == {"alice"}


def test_casefolding_goes_beyond_lowercasing() -> None:
    assert identity.username_key("Stra\u00dfe") == identity.username_key("STRASSE")


def test_different_usernames_have_different_keys() -> None:
    assert identity.username_key("alice") != identity.username_key("alice2")
    assert identity.username_key("alice") != identity.username_key("al1ce")


def test_email_keys_ignore_case_and_surrounding_space() -> None:
    assert identity.email_key("  Alice@Example.COM ") == identity.email_key("alice@example.com")


# ------------------------------------------------------------------ usernames


@pytest.mark.parametrize("name", ["bob", "Alice", "alice.smith", "a_b-c", "x" * 64, "\u00e9mile"])
def test_a_plain_username_is_accepted_as_typed(name: str) -> None:
    assert identity.check_username(name) == name


def test_a_full_width_username_is_shown_in_its_nfkc_form() -> None:
    assert identity.check_username("\uff21lice") == "Alice"


@pytest.mark.parametrize(
    "name",
    [
        "alice@example.com",
        "al@ce",
        "alice smith",
        " alice",
        "alice\t",
        "al\u0000ice",
        "ali\nce",
        "al\u200bice",  # zero-width space
        "al\u202eice",  # right-to-left override
        "al\u00a0ice",  # no-break space
        "alice!",
        "al/ice",
        "<script>",
    ],
)
def test_a_username_with_a_forbidden_character_is_refused(name: str) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        identity.check_username(name)

    assert field_error(raised) == ("username", "invalid_characters")


@pytest.mark.parametrize("name", ["", "ab", "x" * 65, "x" * 1000])
def test_a_username_of_the_wrong_length_is_refused(name: str) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        identity.check_username(name)

    assert field_error(raised) == ("username", "invalid_length")


def test_the_username_length_is_counted_after_nfkc() -> None:
    # U+FB03 is one character that NFKC makes three ("ffi").
    assert identity.check_username("\ufb03") == "ffi"
    with pytest.raises(errors.ValidationError):
        identity.check_username("\ufb03" * 22)  # 66 characters once normalised


# ------------------------------------------------------------------ emails


@pytest.mark.parametrize(
    ("email", "shown"),
    [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith+tag@Example.co.uk", "Alice.Smith+tag@Example.co.uk"),
        ("  alice@example.com  ", "alice@example.com"),
        ("\u00e9lise@exampl\u00e9.fr", "\u00e9lise@exampl\u00e9.fr"),
    ],
)
def test_a_valid_email_is_accepted_trimmed(email: str, shown: str) -> None:
    assert identity.check_email(email) == shown


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "a@b@example.com",
        "alice smith@example.com",
        "alice@exa mple.com",
        "alice@.",
        "alice@example.",
        "ali\u0000ce@example.com",
        "alice@example.com\u200b",
        "x" * 250 + "@example.com",
    ],
)
def test_an_invalid_email_is_refused(email: str) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        identity.check_email(email)

    assert field_error(raised) == ("email", "invalid_email")


def test_an_email_of_exactly_254_characters_is_accepted() -> None:
    email = "x" * (254 - len("@example.com")) + "@example.com"

    assert identity.check_email(email) == email


# ------------------------------------------------------------------ display names


def test_a_display_name_is_trimmed_and_normalised() -> None:
    assert identity.check_display_name("  Alice Smith  ") == "Alice Smith"
    assert identity.check_display_name("\uff21lice") == "Alice"
    assert identity.check_display_name("Caf\u00e9 \u2615") == "Caf\u00e9 \u2615"


def test_a_display_name_of_100_characters_is_accepted() -> None:
    assert identity.check_display_name("d" * 100) == "d" * 100


@pytest.mark.parametrize(
    "name",
    ["d" * 101, "Alice\u0000", "Al\nice", "Alice\u202e", "Al\u200bice", "Alice\x7f"],
)
def test_a_long_or_unprintable_display_name_is_refused(name: str) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        identity.check_display_name(name)

    assert field_error(raised) == ("display_name", "invalid_display_name")
