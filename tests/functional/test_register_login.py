"""POST /register and POST /login through the adapted gateway, on DynamoDB Local."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import HTTPResponse

from tests.assertions import USER_FIELDS, assert_problem, header, unique
from tests.conftest import Api

PASSWORD = "correct horse battery staple"
NewUser = Callable[..., dict[str, Any]]


def assert_no_secrets(user: dict[str, Any], password: str) -> None:
    assert set(user) == USER_FIELDS
    text = json.dumps(user)
    assert password not in text
    assert "$2b$" not in text and "bcrypt" not in text
    assert "hash" not in text and "password" not in text


# ------------------------------------------------------------------ register


def test_register_returns_201_with_the_public_user(api: Api) -> None:
    username = unique("Reg.")
    response = api.post(
        "/register",
        {
            "username": username,
            "password": PASSWORD,
            "email": f"{username}@Example.com",
            "display_name": "  Reg User ",
        },
    )

    assert response.status_code == 201, response.body
    assert header(response, "Content-Type") == "application/json"
    user = response.json_body["user"]
    assert user["username"] == username
    assert user["email"] == f"{username}@Example.com"
    assert user["display_name"] == "Reg User"
    assert user["email_verified"] is False
    assert user["mfa_enabled"] is False
    assert isinstance(user["id"], str) and user["id"]
    assert isinstance(user["created_at"], int)
    assert_no_secrets(user, PASSWORD)


def test_register_without_optional_fields_returns_nulls(api: Api) -> None:
    response = api.post("/register", {"username": unique(), "password": PASSWORD})

    assert response.status_code == 201, response.body
    user = response.json_body["user"]
    assert user["email"] is None
    assert user["display_name"] is None
    assert_no_secrets(user, PASSWORD)


def test_two_users_get_different_ids(new_user: NewUser) -> None:
    assert new_user()["user"]["id"] != new_user()["user"]["id"]


@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.swapcase])
def test_registering_a_taken_username_in_another_case_is_409_username_taken(
    api: Api, new_user: NewUser, spelling: Callable[[str], str]
) -> None:
    taken = new_user(username=unique("Taken"))["username"]

    response = api.post("/register", {"username": spelling(taken), "password": PASSWORD})

    assert_problem(response, 409, "username_taken")


def test_registering_a_full_width_variant_of_a_taken_username_is_409_username_taken(
    api: Api, new_user: NewUser
) -> None:
    suffix = os.urandom(4).hex()
    new_user(username=f"Alice{suffix}")
    # U+FF21 FULLWIDTH LATIN CAPITAL LETTER A: NFKC makes it "A".
    variant = f"\uff21lice{suffix}"

    response = api.post("/register", {"username": variant, "password": PASSWORD})

    assert_problem(response, 409, "username_taken")


def test_registering_a_taken_email_in_another_case_is_409_email_taken(
    api: Api, new_user: NewUser
) -> None:
    email = f"{unique('Mail')}@Example.com"
    new_user(email=email)

    response = api.post(
        "/register", {"username": unique(), "password": PASSWORD, "email": email.upper()}
    )

    assert_problem(response, 409, "email_taken")


def test_a_refused_registration_claims_nothing(api: Api) -> None:
    """A 409 on the email must not leave the username taken (one transaction)."""
    email = f"{unique('claim')}@example.com"
    first = api.post("/register", {"username": unique(), "password": PASSWORD, "email": email})
    assert first.status_code == 201, first.body
    username = unique("free")

    refused = api.post("/register", {"username": username, "password": PASSWORD, "email": email})
    retried = api.post("/register", {"username": username, "password": PASSWORD})

    assert_problem(refused, 409, "email_taken")
    assert retried.status_code == 201, retried.body


def test_a_weak_password_is_400_weak_password_naming_the_password_field(api: Api) -> None:
    response = api.post("/register", {"username": unique(), "password": "short"})

    document = assert_problem(response, 400, "weak_password")
    assert document["errors"][0]["field"] == "password"
    assert document["errors"][0]["code"] == "too_short"
    assert document["errors"][0]["message"]


def test_a_weakly_registered_username_stays_free(api: Api) -> None:
    username = unique()
    assert api.post("/register", {"username": username, "password": "short"}).status_code == 400

    assert api.post("/register", {"username": username, "password": PASSWORD}).status_code == 201


def test_a_1000_character_password_is_refused_as_too_long_on_register(api: Api) -> None:
    response = api.post("/register", {"username": unique(), "password": "p" * 1000})

    document = assert_problem(response, 400, "weak_password")
    assert document["errors"][0]["field"] == "password"
    assert document["errors"][0]["code"] == "too_long"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "has space"),
        ("username", "has@sign"),
        ("username", "ab"),
        ("username", "ctl\u0007char"),
        ("email", "not-an-email"),
        ("display_name", "bad\u0000name"),
    ],
)
def test_an_invalid_field_on_register_is_400_validation_error_naming_it(
    api: Api, field: str, value: str
) -> None:
    body = {"username": unique(), "password": PASSWORD, field: value}

    document = assert_problem(api.post("/register", body), 400, "validation_error")

    assert [e["field"] for e in document["errors"]] == [field]


# ------------------------------------------------------------------ login


def test_login_returns_a_token_pair_that_is_not_cached(api: Api, new_user: NewUser) -> None:
    user = new_user()

    response = api.post("/login", {"username": user["username"], "password": PASSWORD})

    assert response.status_code == 200, response.body
    assert header(response, "Cache-Control") == "no-store"
    pair = response.json_body
    assert set(pair) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    }
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_expires_in"] > pair["expires_in"]
    assert pair["access_token"] != pair["refresh_token"]


def test_login_by_username_ignores_case_and_width(api: Api, new_user: NewUser) -> None:
    suffix = os.urandom(4).hex()
    new_user(username=f"Alice{suffix}")

    for spelling in (f"alice{suffix}", f"ALICE{suffix}", f"\uff21lice{suffix}"):
        response = api.post("/login", {"username": spelling, "password": PASSWORD})
        assert response.status_code == 200, (spelling, response.body)


def test_login_by_email_works_in_any_case(api: Api, new_user: NewUser) -> None:
    email = f"{unique('Login')}@Example.com"
    user = new_user(email=email)

    for spelling in (email, email.lower(), email.upper()):
        response = api.post("/login", {"username": spelling, "password": PASSWORD})
        assert response.status_code == 200, (spelling, response.body)
        protected = api.get("/protected", token=response.json_body["access_token"])
        assert protected.json_body["user"]["id"] == user["user"]["id"]


def test_a_password_typed_in_full_width_logs_in(api: Api, new_user: NewUser) -> None:
    user = new_user(password="Quartz9Lemonade")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "Quartz9Lemonade")

    response = api.post("/login", {"username": user["username"], "password": full_width})

    assert response.status_code == 200, response.body


def test_wrong_password_and_unknown_user_get_identical_401s(api: Api, new_user: NewUser) -> None:
    user = new_user()

    wrong_password = api.post("/login", {"username": user["username"], "password": "wrong " * 3})
    unknown_user = api.post("/login", {"username": unique("ghost"), "password": "wrong " * 3})
    unknown_email = api.post("/login", {"username": "ghost@example.com", "password": "nope1234"})

    for response in (wrong_password, unknown_user, unknown_email):
        assert_problem(response, 401, "invalid_credentials")
    assert wrong_password.body == unknown_user.body == unknown_email.body

    def comparable(response: HTTPResponse) -> dict[str, str]:
        headers = {k.lower(): str(v) for k, v in response.headers.items()}
        headers.pop("x-request-id")
        return headers

    assert comparable(wrong_password) == comparable(unknown_user) == comparable(unknown_email)
    assert header(wrong_password, "X-Request-Id") != header(unknown_user, "X-Request-Id")


def test_the_right_password_for_another_account_does_not_log_in(
    api: Api, new_user: NewUser
) -> None:
    alice = new_user(password="alice's password")
    new_user(password="bob's password!")

    response = api.post("/login", {"username": alice["username"], "password": "bob's password!"})

    assert_problem(response, 401, "invalid_credentials")


@pytest.mark.parametrize("known", [True, False], ids=["known-user", "unknown-user"])
def test_login_with_a_1000_character_password_is_401_not_500(
    api: Api, new_user: NewUser, known: bool
) -> None:
    username = new_user()["username"] if known else unique("ghost")

    response = api.post("/login", {"username": username, "password": "x" * 1000})

    assert_problem(response, 401, "invalid_credentials")


#: One character that NFKC turns into eighteen (U+FDFA, an Arabic ligature).
EXPANDING = "\ufdfa"


@pytest.mark.parametrize(
    "login", [EXPANDING * 320, "x@" + EXPANDING * 300], ids=["username", "email"]
)
def test_a_login_name_that_normalises_past_any_key_is_an_unknown_user(api: Api, login: str) -> None:
    """Its normalised key would be over DynamoDB's 2,048-byte limit: that is no account,
    not a 503 from the store."""
    response = api.post("/login", {"username": login, "password": "whatever it is"})

    assert_problem(response, 401, "invalid_credentials")


def test_an_email_that_normalises_past_254_characters_is_refused_on_register(api: Api) -> None:
    email = "a@" + EXPANDING * 20 + ".example"  # 30 characters typed, 370 after NFKC
    response = api.post(
        "/register",
        {"username": unique("wide"), "password": "correct horse battery", "email": email},
    )

    problem = assert_problem(response, 400, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["email"]


def test_login_with_a_password_over_the_field_limit_is_a_client_error(
    api: Api, new_user: NewUser
) -> None:
    response = api.post("/login", {"username": new_user()["username"], "password": "x" * 5000})

    assert_problem(response, 400, "validation_error")


# ------------------------------------------------------------------ bad bodies

BAD_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"  \n "),
    ("not-utf8", b'{"username": "\xff\xfe", "password": "x"}'),
    ("not-json", b"username=alice"),
    ("truncated", b'{"username": "alice", "password": '),
    ("array", b'["alice", "secret"]'),
    ("string", b'"alice"'),
    ("number", b"42"),
    ("null", b"null"),
    ("true", b"true"),
    ("duplicate-key", b'{"username": "a", "password": "correct horse", "username": "b"}'),
    ("nan", b'{"username": "alice", "password": NaN}'),
    ("deep", b"[" * 8_000 + b"]" * 8_000),
    ("deep-oversized", b"[" * 100_000),
    ("oversized", b'{"username": "alice", "password": "' + b"p" * 17_000 + b'"}'),
    ("unknown-field", b'{"username": "alice", "password": "correct horse", "admin": true}'),
    ("missing-field", b'{"username": "alice"}'),
    ("empty-object", b"{}"),
    ("number-for-string", b'{"username": 12345, "password": "correct horse"}'),
    ("bool-for-string", b'{"username": "alice", "password": true}'),
    ("object-for-string", b'{"username": {"$gt": ""}, "password": "correct horse"}'),
    ("lone-surrogate", b'{"username": "alice", "password": "\\ud800"}'),
]


@pytest.mark.parametrize("path", ["/register", "/login"])
@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[case for case, _ in BAD_BODIES])
def test_a_bad_body_is_400_validation_error(api: Api, path: str, case: str, body: bytes) -> None:
    response = api.post(path, raw=body)

    assert_problem(response, 400, "validation_error")
    assert header(response, "X-Request-Id")


def test_a_wrong_type_for_an_optional_string_is_400_validation_error(api: Api) -> None:
    body = {"username": unique(), "password": PASSWORD, "email": True}

    document = assert_problem(api.post("/register", body), 400, "validation_error")

    assert document["errors"] == [
        {"field": "email", "code": "invalid_type", "message": document["errors"][0]["message"]}
    ]


@pytest.mark.parametrize("path", ["/register", "/login"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"username": "alice", "password": "correct horse"}'),
        ("application/x-www-form-urlencoded", b"username=alice&password=correct+horse"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\nalice\r\n--x--"),
        ("application/xml", b"<login><username>alice</username></login>"),
    ],
)
def test_a_body_that_is_not_declared_json_is_400_validation_error(
    api: Api, path: str, content_type: str, body: bytes
) -> None:
    response = api.post(path, raw=body, headers={"Content-Type": content_type})

    assert_problem(response, 400, "validation_error")


def test_json_with_a_charset_parameter_is_accepted(api: Api) -> None:
    body = json.dumps({"username": unique(), "password": PASSWORD}).encode()

    response = api.post(
        "/register", raw=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert response.status_code == 201, response.body


def test_problem_documents_leak_no_internals(api: Api) -> None:
    responses = [api.post("/login", raw=body) for _, body in BAD_BODIES]

    for response in responses:
        text = response.body.decode("utf-8")
        for leak in ("Traceback", "Exception", "chalicelib", ".py", "botocore", "Code", "Message"):
            assert leak not in text, (leak, text)


# ------------------------------------------------------------------ headers on every answer


def test_every_answer_carries_a_request_id_and_nosniff(api: Api, new_user: NewUser) -> None:
    user = new_user()
    login = {"username": user["username"], "password": PASSWORD}
    responses = {
        "201": api.post("/register", {"username": unique(), "password": PASSWORD}),
        "200": api.post("/login", login),
        "401": api.post("/login", {**login, "password": "wrong password"}),
        "400": api.post("/login", raw=b"nope"),
        "409": api.post("/register", {"username": user["username"], "password": PASSWORD}),
        "404": api.get("/no/such/route"),
        "405": api.request("DELETE", "/login"),
        "health": api.get("/health"),
        "unauthorized": api.get("/protected"),
    }

    ids = set()
    for name, response in responses.items():
        request_id = header(response, "X-Request-Id")
        assert request_id, name
        assert header(response, "X-Content-Type-Options") == "nosniff", name
        ids.add(request_id)
    assert len(ids) == len(responses)


def test_error_answers_are_not_cached(api: Api) -> None:
    for response in (api.post("/login", raw=b"nope"), api.get("/no/such/route")):
        assert header(response, "Cache-Control") == "no-store"
