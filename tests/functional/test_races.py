"""The races of issue 8 and those found since, each with 50 clients released at once by
a barrier.

Every client sends through a test client of its own over the one app (as separate
callers would), against the session's DynamoDB Local, so the interleavings happen where
they would deployed: between the app's DynamoDB calls. After each race the table itself
is read, not only the API: a race that loses data can look fine from the outside.
No answer may be a 5xx, whatever the interleaving.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from chalice.test import HTTPResponse

from chalicelib.accounts import identity
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.store import items
from chalicelib.wiring import Services
from tests.assertions import assert_problem, unique
from tests.conftest import PROJECT_DIR, Api
from tests.functional.lifecycle import verify_address
from tests.functional.test_recovery import reset_token
from tests.functional.test_sessions import refresh, works
from tests.functional.todolist import Todos
from tests.racing import all_at_once, statuses

CLIENTS = 50
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a wholly different passphrase"
#: Refreshes one racer may chain while a password change runs: a loop fails, not hangs.
MAX_CHAIN = 4
#: Between a chain's refreshes: 49 chains without a pause would starve the change of CPU.
CHAIN_PAUSE = 0.25

pytestmark = pytest.mark.usefixtures("keep_os_environ")


@pytest.fixture
def clients(gateway_client: GatewayClient) -> list[Api]:
    """One test client per racer (each with its own gateway), over the same app."""
    app = gateway_client._app
    return [
        Api(GatewayClient(app, stage_name="local", project_dir=str(PROJECT_DIR)).http)
        for _ in range(CLIENTS)
    ]


class Table:
    """Direct reads of the table, to check what a race left behind."""

    def __init__(self, services: Services) -> None:
        self._client = services.store.client
        self._name = services.settings.table_name

    def get(self, key: items.Key) -> dict[str, Any] | None:
        found = self._client.get_item(TableName=self._name, Key=key, ConsistentRead=True)
        return found.get("Item")

    def partition(self, user_id: str) -> list[str]:
        """The sort keys of every item in the user's partition."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": items.user_partition(user_id)}},
            ConsistentRead=True,
        )
        return [item["sk"]["S"] for page in pages for item in page.get("Items", [])]

    def users_named(self, username: str) -> list[str]:
        """The ids of every user item with this username (a Scan: tests only)."""
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._name,
            FilterExpression="#t = :user AND username_key = :key",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={
                ":user": {"S": "user"},
                ":key": {"S": identity.username_key(username)},
            },
            ConsistentRead=True,
        )
        return [item["id"]["S"] for page in pages for item in page.get("Items", [])]

    def sessions(self, user_id: str) -> list[str]:
        return [
            sk.removeprefix("SESSION#")
            for sk in self.partition(user_id)
            if sk.startswith("SESSION#")
        ]


@pytest.fixture
def table(app_services: Services) -> Table:
    return Table(app_services)


def assert_no_server_errors(responses: list[HTTPResponse]) -> None:
    failed = [(r.status_code, r.body) for r in responses if r.status_code >= 500]
    assert not failed, failed


def signed_in(api: Api, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.post("/login", {"username": username, "password": password})
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def me(api: Api, access_token: str) -> dict[str, Any]:
    response = api.get("/me", token=access_token)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def test_fifty_registrations_of_one_username_create_exactly_one_account(
    clients: list[Api], table: Table
) -> None:
    username = unique("race")
    body = {"username": username, "password": PASSWORD}

    responses = all_at_once([partial(c.post, "/register", body) for c in clients])

    assert_no_server_errors(responses)
    assert statuses(responses) == Counter({201: 1, 409: CLIENTS - 1})
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "username_taken")
    winner = next(r for r in responses if r.status_code == 201).json_body["user"]["id"]
    # One user item, one guard naming it, and nothing written for the losers.
    assert table.users_named(username) == [winner]
    guard = table.get(items.guard_key("USERNAME", identity.username_key(username)))
    assert guard is not None and guard["user_id"]["S"] == winner
    assert table.partition(winner) == ["PROFILE"]


def test_fifty_refreshes_of_one_token_give_at_most_one_pair_and_end_the_family(
    api: Api, clients: list[Api], new_user: Callable[..., dict[str, Any]], table: Table
) -> None:
    pair = signed_in(api, new_user(password=PASSWORD)["username"])
    user_id = me(api, pair["access_token"])["id"]

    responses = all_at_once([partial(refresh, c, pair["refresh_token"]) for c in clients])

    assert_no_server_errors(responses)
    winners = [r.json_body for r in responses if r.status_code == 200]
    assert len(winners) <= 1, winners
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 401, "invalid_token")
    # Losing a refresh race is reuse (docs/concepts/sessions.md): the session family ends,
    # the winner's new pair with it.
    assert table.sessions(user_id) == []
    assert_problem(refresh(api, pair["refresh_token"]), 401, "invalid_token")
    assert not works(api, pair["access_token"])
    for won in winners:
        assert not works(api, won["access_token"])
        assert_problem(refresh(api, won["refresh_token"]), 401, "invalid_token")


def test_fifty_simultaneous_creates_by_one_user_are_all_kept_and_counted(
    api: Api, clients: list[Api], new_user: Callable[..., dict[str, Any]], table: Table
) -> None:
    token = signed_in(api, new_user(password=PASSWORD)["username"])["access_token"]
    user_id = me(api, token)["id"]
    texts = [f"racer {n:02d}" for n in range(CLIENTS)]
    requests = [
        partial(c.post, "/todos", {"text": text}, token=token)
        for c, text in zip(clients, texts, strict=True)
    ]

    responses = all_at_once(requests)

    assert_no_server_errors(responses)
    assert statuses(responses) == Counter({201: CLIENTS}), [r.body for r in responses]
    created = {r.json_body["id"] for r in responses}
    assert len(created) == CLIENTS
    listed = Todos(api, token).everything(limit=100)
    assert {t["id"] for t in listed} == created
    assert sorted(t["text"] for t in listed) == texts
    counter = table.get({"pk": {"S": items.user_partition(user_id)}, "sk": {"S": "TODOCOUNT"}})
    assert counter is not None and counter["count"]["N"] == str(CLIENTS)


def refresh_chain(api: Api, refresh_token: str, until: threading.Event) -> list[HTTPResponse]:
    """Refresh, then refresh with the pair it gave, again and again, until ``until`` is
    set or a refresh is refused: one client keeping its session alive."""
    answers: list[HTTPResponse] = []
    while len(answers) < MAX_CHAIN:
        answer = refresh(api, refresh_token)
        answers.append(answer)
        if answer.status_code != 200 or until.is_set():
            break
        refresh_token = answer.json_body["refresh_token"]
        until.wait(CHAIN_PAUSE)
    return answers


def test_refreshes_racing_a_password_change_leave_only_the_changers_session(
    api: Api, clients: list[Api], new_user: Callable[..., dict[str, Any]], table: Table
) -> None:
    username = new_user(password=PASSWORD)["username"]
    changer = signed_in(api, username)
    user_id = me(api, changer["access_token"])["id"]
    changer_session = table.sessions(user_id)
    # Every other racer keeps a session of its own alive, opened before the race, by
    # refreshing it over and over for as long as the password change takes.
    others = [signed_in(api, username) for _ in range(CLIENTS - 1)]
    changed_yet = threading.Event()

    def change() -> list[HTTPResponse]:
        answer = clients[0].post(
            "/me/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            token=changer["access_token"],
        )
        changed_yet.set()
        return [answer]

    chains: list[Callable[[], list[HTTPResponse]]] = [
        partial(refresh_chain, c, pair["refresh_token"], changed_yet)
        for c, pair in zip(clients[1:], others, strict=True)
    ]

    [changed], *refreshed = all_at_once([change, *chains])

    answers = [r for chain in refreshed for r in chain]
    assert_no_server_errors([changed, *answers])
    assert changed.status_code == 204, changed.body
    assert set(statuses(answers)) <= {200, 401}, statuses(answers)
    # Only the changer's session is left. Every token from before the race is dead,
    # and so is every pair a refresh won during it.
    assert table.sessions(user_id) == changer_session
    # (A chain's earlier pairs were spent by its own next refresh: its last pair is
    # the one that could have outlived the change.)
    last_won = [chain[-1].json_body for chain in refreshed if chain[-1].status_code == 200]
    for pair in [*others, *last_won]:
        assert_problem(refresh(api, pair["refresh_token"]), 401, "invalid_token")
        assert not works(api, pair["access_token"])
    assert works(api, changer["access_token"])
    assert refresh(api, changer["refresh_token"]).status_code == 200
    signed_in(api, username, NEW_PASSWORD)


def test_logins_racing_account_deletion_leave_nothing_behind(
    api: Api, clients: list[Api], new_user: Callable[..., dict[str, Any]], table: Table
) -> None:
    account = new_user(password=PASSWORD, email=f"{unique('gone')}@example.com")
    owner = signed_in(api, account["username"])
    user_id = account["user"]["id"]
    # The racers log in by email, so their claims (at most the account's limit at once,
    # the rest 429) are on the email's counter, not on the username's that the delete's
    # own password check claims.
    body = {"username": account["email"], "password": PASSWORD}
    wrong = {**body, "password": "not the password at all"}
    delete = partial(
        api.request, "DELETE", "/me", {"password": PASSWORD}, token=owner["access_token"]
    )
    # Every sixth racer guesses wrong: a failure records an event in the user's
    # partition, which must not land there after the deletion swept it. That is 8
    # failures, under the account's limit (10), so the delete's own check is never 429.
    logins = [
        partial(c.post, "/login", wrong if n % 6 == 5 else body) for n, c in enumerate(clients)
    ]

    deleted, *answers = all_at_once([delete, *logins])

    assert_no_server_errors([deleted, *answers])
    assert deleted.status_code == 204, deleted.body
    assert set(statuses(answers)) <= {200, 401, 429}, statuses(answers)
    for response in answers:
        if response.status_code == 401:
            assert_problem(response, 401, "invalid_credentials")
    # No user item, no guard, no session, no event: the partition is empty.
    assert table.partition(user_id) == []
    assert (
        table.get(items.guard_key("USERNAME", identity.username_key(account["username"]))) is None
    )
    assert table.get(items.guard_key("EMAIL", identity.email_key(account["email"]))) is None
    for response in answers:
        if response.status_code == 200:
            assert not works(api, response.json_body["access_token"])
            assert_problem(refresh(api, response.json_body["refresh_token"]), 401, "invalid_token")
    # Refused from now on (401, or 429 once the racers' failures lock the name).
    assert api.post("/login", body).status_code in (401, 429)


def creates_until_refused(api: Api, token: str) -> list[HTTPResponse]:
    """Create to-dos one after another until the API refuses (or ``MAX_CHAIN`` times),
    so some create is always in flight while the account goes."""
    answers: list[HTTPResponse] = []
    while len(answers) < 4 * MAX_CHAIN:
        answers.append(api.post("/todos", {"text": f"racer {len(answers)}"}, token=token))
        if answers[-1].status_code != 201:
            break
    return answers


def test_to_do_creates_racing_account_deletion_leave_nothing_behind(
    api: Api, clients: list[Api], new_user: Callable[..., dict[str, Any]], table: Table
) -> None:
    account = new_user(password=PASSWORD)
    token = signed_in(api, account["username"])["access_token"]
    user_id = account["user"]["id"]

    def delete() -> list[HTTPResponse]:
        time.sleep(0.2)  # let the creates get going
        return [api.request("DELETE", "/me", {"password": PASSWORD}, token=token)]

    chains: list[Callable[[], list[HTTPResponse]]] = [
        partial(creates_until_refused, c, token) for c in clients
    ]

    (deleted,), *answered = all_at_once([delete, *chains])

    answers = [a for chain in answered for a in chain]
    assert_no_server_errors([deleted, *answers])
    assert deleted.status_code == 204, deleted.body
    assert set(statuses(answers)) <= {201, 401}, statuses(answers)
    for response in answers:
        if response.status_code == 401:
            assert_problem(response, 401, "invalid_token")
    # A create that passed the authorizer before the deletion still finds no user to
    # write under: no to-do and no count outlive the sweep.
    assert table.partition(user_id) == []


def old_password_logins(
    api: Api, username: str, until: threading.Event
) -> list[tuple[str, HTTPResponse]]:
    """Log in with the old password again and again (a pause between) until refused or
    ``until`` is set; once refused with 401, once with the new password. Each answer
    comes with the password it was sent with."""
    answers: list[tuple[str, HTTPResponse]] = []
    while len(answers) < MAX_CHAIN:
        answer = api.post("/login", {"username": username, "password": PASSWORD})
        answers.append((PASSWORD, answer))
        if answer.status_code != 200 or until.is_set():
            break
        until.wait(CHAIN_PAUSE)
    if answers[-1][1].status_code == 401:
        answer = api.post("/login", {"username": username, "password": NEW_PASSWORD})
        answers.append((NEW_PASSWORD, answer))
    return answers


@pytest.mark.parametrize("how", ["change", "reset"])
def test_old_password_logins_racing_a_password_change_open_no_lasting_session(
    how: str,
    api: Api,
    clients: list[Api],
    new_user: Callable[..., dict[str, Any]],
    app_services: Services,
) -> None:
    table = Table(app_services)
    account = new_user(password=PASSWORD, email=f"{unique('moved')}@example.com")
    username, user_id = account["username"], account["user"]["id"]
    changer = signed_in(api, username)
    reset_with = ""
    if how == "reset":
        verify_address(api, app_services.settings, account["email"])
        reset_with = reset_token(api, app_services.settings, account["email"])
    changed_yet = threading.Event()

    def change() -> list[tuple[str, HTTPResponse]]:
        if how == "change":
            answer = clients[0].post(
                "/me/password",
                {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                token=changer["access_token"],
            )
        else:
            answer = clients[0].post(
                "/password/reset", {"token": reset_with, "new_password": NEW_PASSWORD}
            )
        changed_yet.set()
        return [("", answer)]

    # By email: their claims (at most the limit in flight, the rest 429) are not on the
    # username's counter, which the change's own password check claims.
    logins: list[Callable[[], list[tuple[str, HTTPResponse]]]] = [
        partial(old_password_logins, c, account["email"], changed_yet) for c in clients[1:]
    ]

    [(_, changed)], *chains = all_at_once([change, *logins])

    answers = [pair for chain in chains for pair in chain]
    assert_no_server_errors([changed, *(r for _, r in answers)])
    assert changed.status_code == 204, changed.body
    assert set(statuses([r for _, r in answers])) <= {200, 401, 429}, statuses(
        [r for _, r in answers]
    )
    for _, response in answers:
        if response.status_code == 401:
            assert_problem(response, 401, "invalid_credentials")

    def opened(password: str) -> set[str]:
        return {
            app_services.tokens.verify(r.json_body["access_token"]).session_id
            for sent, r in answers
            if sent == password and r.status_code == 200
        }

    # Every session still alive was opened with the new password, or is the changer's
    # own (a change keeps it; a reset ends it too).
    kept = {app_services.tokens.verify(changer["access_token"]).session_id}
    allowed = opened(NEW_PASSWORD) | (kept if how == "change" else set())
    alive = set(table.sessions(user_id))
    assert alive <= allowed, alive - allowed
    assert not alive & opened(PASSWORD)
    assert (kept <= alive) == (how == "change")
