"""Body parsing: every way a JSON body can be wrong is a 400 ``validation_error``.

The requests are real ``chalice.app.Request`` objects built from the event API Gateway sends.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from chalice.app import Request

from chalicelib.edge import http
from chalicelib.edge.http import Field
from chalicelib.platform import errors

LIMIT = 16 * 1024
FIELDS = (
    Field("username", max_length=64),
    Field("password", max_length=1024),
    Field("email", required=False, max_length=320),
    Field("remember", kind=bool, required=False),
)


def request(body: str | bytes | None, content_type: str = "application/json") -> Request:
    """A request as API Gateway delivers it; bytes arrive base64-encoded, as binary bodies do."""
    binary = isinstance(body, bytes)
    event: dict[str, Any] = {
        "multiValueQueryStringParameters": None,
        "headers": {"content-type": content_type},
        "pathParameters": None,
        "requestContext": {"httpMethod": "POST", "resourcePath": "/login"},
        "body": base64.b64encode(body).decode("ascii") if isinstance(body, bytes) else body,
        "isBase64Encoded": binary,
        "stageVariables": None,
    }
    return Request(event)


def parse(body: str | bytes | None) -> dict[str, Any]:
    return http.json_object(request(body), FIELDS, max_bytes=LIMIT)


def refused(body: str | bytes | None) -> errors.ValidationError:
    with pytest.raises(errors.ValidationError) as raised:
        parse(body)
    assert raised.value.status == 400
    assert raised.value.code == "validation_error"
    return raised.value


def field_codes(error: errors.ValidationError) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in error.errors]


# ------------------------------------------------------------------ accepted


def test_a_valid_body_is_returned_as_its_fields() -> None:
    body = parse('{"username": "alice", "password": "secret123", "remember": true}')

    assert body == {"username": "alice", "password": "secret123", "remember": True}


def test_an_optional_field_sent_as_null_counts_as_absent() -> None:
    body = parse('{"username": "alice", "password": "secret123", "email": null, "remember": null}')

    assert body == {"username": "alice", "password": "secret123"}


def test_non_ascii_text_and_escapes_are_read_as_unicode() -> None:
    body = parse('{"username": "\u00e9lise", "password": "p\\u00e4ss \\ud83d\\ude00"}')

    assert body == {"username": "\u00e9lise", "password": "p\u00e4ss \U0001f600"}


def test_a_body_of_exactly_the_limit_passes_the_size_check() -> None:
    prefix = '{"username": "alice", "password": "'
    body = prefix + "p" * (LIMIT - len(prefix) - 2) + '"}'
    assert len(body.encode()) == LIMIT

    with pytest.raises(errors.ValidationError) as raised:
        parse(body)

    # Accepted by the size check; refused only because the password exceeds its own limit.
    assert field_codes(raised.value) == [("password", "too_long")]


def test_a_base64_encoded_binary_body_is_read_as_utf8() -> None:
    assert parse(b'{"username": "alice", "password": "secret123"}')["username"] == "alice"


# ------------------------------------------------------------------ refused bodies


@pytest.mark.parametrize("body", [None, "", "   ", "\n\t", b""])
def test_an_empty_body_is_refused(body: str | bytes | None) -> None:
    refused(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\xff\xfe", "password": "secret123"}',
        b"\xc3\x28",
        b'{"username": "alice", "password": "\xed\xa0\x80"}',  # an encoded surrogate
        '{"username": "alice", "password": "secret123"}'.encode("utf-16"),
    ],
)
def test_a_body_that_is_not_utf8_is_refused(body: bytes) -> None:
    refused(body)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{",
        '{"username": "alice",}',
        "{'username': 'alice'}",
        '{"username": "alice" "password": "x"}',
        "username=alice&password=secret123",
        '{"username": "alice", "password": "secret123"} trailing',
    ],
)
def test_a_body_that_is_not_json_is_refused(body: str) -> None:
    refused(body)


@pytest.mark.parametrize(
    "body", ["[]", '["username", "password"]', '"alice"', "42", "3.5", "true", "null"]
)
def test_json_that_is_not_an_object_is_refused(body: str) -> None:
    refused(body)


def test_a_duplicate_key_is_refused_rather_than_silently_overwritten() -> None:
    refused('{"username": "alice", "password": "secret123", "username": "admin"}')


def test_a_duplicate_key_inside_a_nested_object_is_refused() -> None:
    refused('{"username": "alice", "password": "secret123", "x": {"a": 1, "a": 2}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    refused(f'{{"username": "alice", "password": "secret123", "remember": {constant}}}')


@pytest.mark.parametrize(
    "body",
    [
        "[" * 8_000 + "]" * 8_000,
        '{"username": ' + "[" * 7_000 + "]" * 7_000 + ', "password": "secret123"}',
        '{"a":' * 2_500 + "1" + "}" * 2_500,
    ],
    ids=["array", "in-a-field", "objects"],
)
def test_deeply_nested_json_under_the_size_limit_is_refused_without_crashing(body: str) -> None:
    assert len(body) <= LIMIT

    refused(body)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    body = '{"username": "alice", "password": "' + "p" * LIMIT + '"}'

    error = refused(body)

    assert error.errors == ()
    assert str(LIMIT) in error.detail


def test_a_deeply_nested_oversized_body_is_refused() -> None:
    refused("[" * 100_000)


def test_an_oversized_body_is_measured_in_bytes_not_characters() -> None:
    # 6,000 snowmen are 6,000 characters but 18,000 UTF-8 bytes.
    body = '{"username": "alice", "password": "' + "\u2603" * 6000 + '"}'
    assert len(body) < LIMIT < len(body.encode())

    error = refused(body)

    assert error.errors == ()


def test_an_unknown_field_is_refused_and_named() -> None:
    error = refused('{"username": "alice", "password": "secret123", "is_admin": true}')

    assert field_codes(error) == [("is_admin", "unknown_field")]


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ('{"password": "secret123"}', ["username"]),
        ('{"username": "alice"}', ["password"]),
        ("{}", ["username", "password"]),
        ('{"username": null, "password": "secret123"}', ["username"]),
    ],
)
def test_a_missing_required_field_is_refused_and_named(body: str, missing: list[str]) -> None:
    error = refused(body)

    assert field_codes(error) == [(name, "required") for name in missing]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"username": 42, "password": "secret123"}', "username"),
        ('{"username": 4.2, "password": "secret123"}', "username"),
        ('{"username": true, "password": "secret123"}', "username"),
        ('{"username": ["alice"], "password": "secret123"}', "username"),
        ('{"username": {"$ne": ""}, "password": "secret123"}', "username"),
        ('{"username": "alice", "password": false}', "password"),
        ('{"username": "alice", "password": "secret123", "remember": "true"}', "remember"),
        ('{"username": "alice", "password": "secret123", "remember": 1}', "remember"),
        ('{"username": "alice", "password": "secret123", "remember": 0}', "remember"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_and_named(body: str, field: str) -> None:
    error = refused(body)

    assert field_codes(error) == [(field, "invalid_type")]


def test_a_string_longer_than_its_field_allows_is_refused() -> None:
    error = refused('{"username": "' + "a" * 65 + '", "password": "secret123"}')

    assert field_codes(error) == [("username", "too_long")]


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\udc00b", "\\ude00\\ud83d"])
def test_a_lone_surrogate_in_a_string_is_refused(escape: str) -> None:
    error = refused(f'{{"username": "alice", "password": "{escape}"}}')

    assert field_codes(error) == [("password", "invalid_string")]


def test_every_problem_in_a_body_is_reported_at_once() -> None:
    error = refused('{"username": 1, "extra": 2}')

    assert sorted(field_codes(error)) == [
        ("extra", "unknown_field"),
        ("password", "required"),
        ("username", "invalid_type"),
    ]
