"""Uniqueness under concurrency: the guard items hold with no read-then-write race."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest

from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.racing import all_at_once, statuses

THREADS = 20

pytestmark = pytest.mark.usefixtures("keep_os_environ")
PASSWORD = "correct horse battery staple"


def test_twenty_simultaneous_spellings_of_one_username_create_exactly_one(api: Api) -> None:
    base = unique("race")
    spellings = [base.upper(), base.lower(), base.capitalize(), base.swapcase()]
    requests = [
        partial(api.post, "/register", {"username": spellings[i % 4], "password": PASSWORD})
        for i in range(THREADS)
    ]

    responses = all_at_once(requests)

    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1})
    winner = next(r for r in responses if r.status_code == 201).json_body["user"]
    assert winner["username"] in spellings


def test_twenty_simultaneous_registrations_of_one_email_create_exactly_one(api: Api) -> None:
    email = f"{unique('shared')}@example.com"
    usernames = [unique(f"mail{i}x") for i in range(THREADS)]
    requests = [
        partial(api.post, "/register", {"username": name, "password": PASSWORD, "email": email})
        for name in usernames
    ]

    responses = all_at_once(requests)

    assert statuses(responses) == Counter({201: 1, 409: THREADS - 1}), [
        r.body for r in responses if r.status_code not in (201, 409)
    ]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email_taken")
    winner = next(r for r in responses if r.status_code == 201).json_body["user"]
    assert winner["email"] == email
    # Each request registered its own username, not a neighbour's.
    assert winner["username"] in usernames
    # The losers' usernames were not claimed: the transaction wrote nothing for them.
    loser = next(name for name in usernames if name != winner["username"])
    retry = api.post("/register", {"username": loser, "password": PASSWORD})
    assert retry.status_code == 201, retry.body
    login = api.post("/login", {"username": email, "password": PASSWORD})
    assert login.status_code == 200, login.body


def test_simultaneous_logins_each_get_their_own_session(
    api: Api, new_user: Callable[..., dict[str, object]]
) -> None:
    user = new_user(password=PASSWORD)
    body = {"username": user["username"], "password": PASSWORD}

    responses = all_at_once([partial(api.post, "/login", body)] * 10)

    assert statuses(responses) == Counter({200: 10})
    refresh_tokens = {r.json_body["refresh_token"] for r in responses}
    assert len(refresh_tokens) == 10
    for response in responses:
        protected = api.get("/protected", token=response.json_body["access_token"])
        assert protected.status_code == 200


def test_simultaneous_registrations_each_get_their_own_body(api: Api) -> None:
    usernames = [unique(f"own{i}x") for i in range(THREADS)]
    requests = [
        partial(api.post, "/register", {"username": name, "password": PASSWORD})
        for name in usernames
    ]

    responses = all_at_once(requests)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert [r.json_body["user"]["username"] for r in responses] == usernames
