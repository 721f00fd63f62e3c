"""Property-based checks: the policy and identity rules take any text a client can send
and either accept it or refuse it with one of our own errors, never a crash."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.accounts import identity
from chalicelib.crypto import passwords
from chalicelib.crypto.passwords import PasswordPolicy
from chalicelib.platform import errors

POLICY = PasswordPolicy()
EXAMPLES = settings(max_examples=200, deadline=None, database=None)
maybe_text = st.none() | st.text()


@EXAMPLES
@given(password=st.text(), username=maybe_text, email=maybe_text)
def test_the_policy_judges_any_text_without_crashing(
    password: str, username: str | None, email: str | None
) -> None:
    found = POLICY.problems(password, username=username, email=email)

    assert all(problem.field == "password" and problem.message for problem in found)
    codes = [problem.code for problem in found]
    assert len(codes) == len(set(codes))
    assert set(codes) <= {"too_short", "too_long", "common", "contains_username", "contains_email"}
    try:
        POLICY.check(password, username=username, email=email)
    except errors.WeakPassword as refused:
        assert list(refused.errors) == found
    else:
        assert found == []


@EXAMPLES
@given(password=st.text())
def test_length_rules_count_normalised_characters(password: str) -> None:
    length = len(unicodedata.normalize("NFKC", password))
    codes = {p.code for p in POLICY.problems(password)}

    assert ("too_short" in codes) == (length < POLICY.min_length)
    assert ("too_long" in codes) == (length > POLICY.max_length)


@EXAMPLES
@given(password=st.text(min_size=1))
def test_normalise_is_utf8_bytes_of_the_nfkc_form_and_idempotent(password: str) -> None:
    normalised = passwords.normalise(password)

    assert normalised == unicodedata.normalize("NFKC", password).encode("utf-8")
    assert passwords.normalise(normalised.decode("utf-8")) == normalised


@EXAMPLES
@given(name=st.text())
def test_username_rules_accept_or_refuse_with_a_validation_error(name: str) -> None:
    key = identity.username_key(name)
    assert identity.username_key(key) == key  # a key is its own key

    try:
        shown = identity.check_username(name)
    except errors.ValidationError as refused:
        assert [e.field for e in refused.errors] == ["username"]
    else:
        assert identity.USERNAME_MIN <= len(shown) <= identity.USERNAME_MAX
        assert "@" not in shown
        assert identity.username_key(shown) == key


@EXAMPLES
@given(address=st.text())
def test_email_rules_accept_or_refuse_with_a_validation_error(address: str) -> None:
    try:
        accepted = identity.check_email(address)
    except errors.ValidationError as refused:
        assert [e.field for e in refused.errors] == ["email"]
    else:
        assert accepted == accepted.strip()
        assert "@" in accepted and len(accepted) <= identity.EMAIL_MAX
        assert identity.email_key(accepted) == identity.email_key(address)


@EXAMPLES
@given(name=st.text())
def test_display_name_rules_accept_or_refuse_with_a_validation_error(name: str) -> None:
    try:
        shown = identity.check_display_name(name)
    except errors.ValidationError as refused:
        assert [e.field for e in refused.errors] == ["display_name"]
    else:
        assert len(shown) <= 100


@EXAMPLES
@given(
    name=st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=3, max_size=20),
    before=st.text(alphabet=string.printable, max_size=20),
    after=st.text(alphabet=string.printable, max_size=20),
)
def test_a_password_holding_the_username_in_any_case_is_refused(
    name: str, before: str, after: str
) -> None:
    codes = {p.code for p in POLICY.problems(before + name.swapcase() + after, username=name)}

    assert "contains_username" in codes


@EXAMPLES
@given(
    local=st.text(alphabet=string.ascii_lowercase + string.digits, min_size=3, max_size=20),
    before=st.text(alphabet=string.printable, max_size=20),
)
def test_a_password_holding_the_email_local_part_is_refused(local: str, before: str) -> None:
    email = f"{local}@example.com"

    codes = {p.code for p in POLICY.problems(before + local.upper(), email=email)}

    assert "contains_email" in codes
