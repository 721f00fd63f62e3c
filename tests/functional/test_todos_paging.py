"""``GET /todos``: newest first, ``limit``, and signed cursors that only their owner can use."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.edge.localgateway import GatewayClient
from tests.assertions import unique
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD
from tests.functional.todolist import SignIn, Todos, assert_field_error

CROWD = 250


@pytest.fixture(scope="module")
def crowded(gateway_client: GatewayClient) -> Iterator[tuple[Todos, list[dict[str, Any]]]]:
    """One user with 250 to-dos, created one after another; they and the Todos, oldest
    first. Shared by the read-only paging tests of this module."""
    api = Api(gateway_client.http)
    username = unique("crowd")
    registered = api.post("/register", {"username": username, "password": PASSWORD})
    assert registered.status_code == 201, registered.body
    signed = api.post("/login", {"username": username, "password": PASSWORD})
    assert signed.status_code == 200, signed.body
    owner = Todos(api, signed.json_body["access_token"])
    created = [owner.add(f"item {n:03d}", completed=n % 3 == 0) for n in range(CROWD)]
    yield owner, created


def ids(todos: list[dict[str, Any]]) -> list[str]:
    return [t["id"] for t in todos]


def assert_full_pages(pages: list[list[dict[str, Any]]], size: int) -> None:
    """Every page but the last holds exactly ``size``; the last holds 1 to ``size``."""
    assert all(len(page) == size for page in pages[:-1]), [len(p) for p in pages]
    assert 1 <= len(pages[-1]) <= size, [len(p) for p in pages]


# ------------------------------------------------------------------ order and size


def test_an_empty_list_is_one_page_without_a_cursor(person: SignIn) -> None:
    response = person().page()

    assert response.status_code == 200, response.body
    assert response.json_body == {"items": [], "next_cursor": None}


def test_the_list_is_newest_first(person: SignIn) -> None:
    me = person()
    first, second, third = me.add("first"), me.add("second"), me.add("third")

    assert me.page().json_body == {"items": [third, second, first], "next_cursor": None}


def test_a_change_does_not_move_a_todo_in_the_list(person: SignIn) -> None:
    me = person()
    old, new = me.add("old"), me.add("new")

    changed = me.patch(old["id"], {"text": "old, edited", "completed": True}).json_body

    assert me.everything() == [new, changed]


def test_limit_defaults_to_20(person: SignIn) -> None:
    me = person()
    created = [me.add(f"n{n}") for n in range(25)]

    first = me.page()
    assert first.status_code == 200, first.body
    assert ids(first.json_body["items"]) == ids(created[::-1][:20])
    cursor = first.json_body["next_cursor"]
    assert isinstance(cursor, str) and cursor
    second = me.page(cursor=cursor).json_body
    assert ids(second["items"]) == ids(created[::-1][20:])
    assert second["next_cursor"] is None


@pytest.mark.parametrize("limit", [1, 2, 7, 20, 50, 99, 100])
def test_any_limit_from_1_to_100_gives_a_page_of_that_size(
    crowded: tuple[Todos, list[dict[str, Any]]], limit: int
) -> None:
    owner, created = crowded

    response = owner.page(limit=limit)

    assert response.status_code == 200, response.body
    assert response.json_body["items"] == created[::-1][:limit]
    assert isinstance(response.json_body["next_cursor"], str)


def test_limit_may_carry_leading_zeros(person: SignIn) -> None:
    me = person()
    created = [me.add(f"z{n}") for n in range(3)]

    assert ids(me.page(limit="02").json_body["items"]) == ids(created[::-1][:2])


@pytest.mark.parametrize(
    "limit",
    [
        "0",
        "101",
        "-1",
        "abc",
        "",
        " 5",
        "5 ",
        "+5",
        "5.0",
        "1e2",
        "0x10",
        "1000",
        "9" * 5000,
        "\u00b2",  # superscript two: a digit to str.isdigit, not to int()
        "\u0663",  # Arabic-Indic three
        "\uff15",  # full-width five
    ],
    ids=lambda value: ascii(value)[:12],
)
def test_a_limit_outside_1_to_100_is_a_400_on_limit(person: SignIn, limit: str) -> None:
    me = person()
    me.add("present")

    assert_field_error(me.page(limit=limit), "limit", "invalid_limit")


def test_a_bad_limit_is_refused_on_later_pages_too(person: SignIn) -> None:
    me = person()
    for n in range(3):
        me.add(f"p{n}")
    cursor = me.page(limit=1).json_body["next_cursor"]

    assert_field_error(me.page(limit=0, cursor=cursor), "limit", "invalid_limit")
    assert_field_error(me.page(limit=101, cursor=cursor), "limit", "invalid_limit")


# ------------------------------------------------------------------ walking every page


@pytest.mark.parametrize(("limit", "size"), [(7, 7), (None, 20), (100, 100), (1, 1)])
def test_paging_through_250_returns_each_todo_once_newest_first(
    crowded: tuple[Todos, list[dict[str, Any]]], limit: int | None, size: int
) -> None:
    owner, created = crowded

    pages = owner.pages(limit)

    walked = [todo for page in pages for todo in page]
    # Every to-do exactly once, whole and unchanged, newest first: no repeat, no gap.
    assert walked == created[::-1]
    assert len(set(ids(walked))) == CROWD
    assert len(pages) == -(-CROWD // size)
    assert_full_pages(pages, size)


@pytest.mark.parametrize(("count", "limit"), [(20, None), (10, 5), (1, 1), (100, 100)])
def test_a_list_of_exactly_whole_pages_ends_without_an_empty_page(
    person: SignIn, count: int, limit: int | None
) -> None:
    """The page holding the oldest to-do says so: no cursor to a page with nothing."""
    me = person()
    created = [me.add(f"w{n}") for n in range(count)]

    pages = me.pages(limit)

    assert [len(page) for page in pages] == [limit or 20] * (count // (limit or 20))
    assert [todo for page in pages for todo in page] == created[::-1]


def test_a_cursor_still_works_after_its_todo_is_deleted(person: SignIn) -> None:
    me = person()
    created = [me.add(f"d{n}") for n in range(9)]
    newest_first = created[::-1]
    first = me.page(limit=3).json_body
    assert first["items"] == newest_first[:3]
    # The to-do the cursor stands on, and the next one, go away between two pages.
    for gone in newest_first[2:4]:
        assert me.delete(gone["id"]).status_code == 204

    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = me.page(limit=3, cursor=cursor).json_body
        rest.extend(page["items"])
        cursor = page["next_cursor"]

    assert rest == newest_first[4:]


def test_todos_created_while_paging_do_not_disturb_the_pages_being_read(
    person: SignIn,
) -> None:
    me = person()
    created = [me.add(f"c{n}") for n in range(6)]
    first = me.page(limit=2).json_body
    newer = me.add("created meanwhile")

    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = me.page(limit=2, cursor=cursor).json_body
        rest.extend(page["items"])
        cursor = page["next_cursor"]

    assert first["items"] + rest == created[::-1]
    assert me.everything()[0] == newer


def test_a_cursor_belongs_to_the_user_not_to_one_session(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    user = new_user()
    me = Todos(api, login(user["username"], user["password"])["access_token"])
    created = [me.add(f"s{n}") for n in range(4)]
    cursor = me.page(limit=2).json_body["next_cursor"]
    assert api.post("/logout", token=me.token).status_code == 204

    again = Todos(api, login(user["username"], user["password"])["access_token"])

    assert again.page(limit=2, cursor=cursor).json_body == {
        "items": created[::-1][2:],
        "next_cursor": None,
    }


# ------------------------------------------------------------------ cursors are signed and bound


def _flip(text: str, at: int) -> str:
    """``text`` with the character at ``at`` changed to another base64url character.

    Not the last character: its low bits carry no data (a 16-byte MAC is 22 characters),
    so changing only those bits would spell the very same cursor.
    """
    return text[:at] + ("B" if text[at] != "B" else "C") + text[at + 1 :]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_another_users_cursor_is_a_400_on_cursor_and_shows_nothing_of_theirs(
    person: SignIn,
) -> None:
    alice, bob = person(), person()
    alices = [alice.add(f"alice private {n}") for n in range(5)]
    bob.add("bob's only")
    cursor = alice.page(limit=2).json_body["next_cursor"]
    assert isinstance(cursor, str)

    for limit in (None, 2, 100):
        response = bob.page(limit=limit, cursor=cursor)
        assert_field_error(response, "cursor", "invalid_cursor")
        text = response.body.decode()
        assert "items" not in response.json_body
        for todo in alices:
            assert todo["id"] not in text
            assert todo["text"] not in text
    # Alice's own cursor still works for her.
    assert alice.page(limit=2, cursor=cursor).json_body["items"] == alices[::-1][2:4]


def test_a_cursor_of_the_other_users_last_page_is_refused_too(person: SignIn) -> None:
    alice, bob = person(), person()
    for n in range(3):
        alice.add(f"a{n}")
    for n in range(3):
        bob.add(f"b{n}")
    alice_cursor = alice.page(limit=1).json_body["next_cursor"]
    bob_cursor = bob.page(limit=1).json_body["next_cursor"]
    assert isinstance(alice_cursor, str) and isinstance(bob_cursor, str)

    # Bob's position, signed for Alice: the signature binds both, so neither works.
    alice_body, _, alice_mac = alice_cursor.partition(".")
    bob_body, _, bob_mac = bob_cursor.partition(".")
    for spliced in (f"{alice_body}.{bob_mac}", f"{bob_body}.{alice_mac}"):
        assert_field_error(bob.page(cursor=spliced), "cursor", "invalid_cursor")
        assert_field_error(alice.page(cursor=spliced), "cursor", "invalid_cursor")


def test_a_tampered_or_made_up_cursor_is_a_400_on_cursor(person: SignIn) -> None:
    me = person()
    created = [me.add(f"t{n}") for n in range(6)]
    cursor = me.page(limit=2).json_body["next_cursor"]
    assert isinstance(cursor, str)
    body, _, mac = cursor.partition(".")
    oldest_position = _b64(f"TODO#{created[0]['id']}".encode())

    tampered = [
        f"{body}.{_flip(mac, 0)}",
        f"{body}.{_flip(mac, len(mac) // 2)}",
        f"{_flip(body, 0)}.{mac}",
        f"{_flip(body, len(body) - 3)}.{mac}",
        f"{body}.{mac[:-2]}",
        f"{oldest_position}.{mac}",
        f"{_b64(b'TODOCOUNT')}.{mac}",
        body,
        f"{body}.",
        f".{mac}",
        f"{body}.{mac}.{mac}",
        cursor + "A",
        "forged",
        "!!!!.????",
        "é.ü",
        "%00",
        "A" * 4000,
    ]
    for forged in tampered:
        response = me.page(cursor=forged)
        assert_field_error(response, "cursor", "invalid_cursor")
    # The real one still works.
    assert me.page(limit=2, cursor=cursor).json_body["items"] == created[::-1][2:4]
