"""To-dos under concurrency, and the per-user cap (``TODO_LIMIT``, 409 ``todo_limit_reached``).

Each thread sends through its own test client over the same app, as separate callers
would; the cap tests install real ``Services`` built with ``todo_limit=5`` for their
duration (``lifecycle.installed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial

import pytest
from chalice.test import HTTPResponse

from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform.config import Settings
from tests.assertions import assert_problem
from tests.conftest import PROJECT_DIR, Api
from tests.functional.lifecycle import installed
from tests.functional.todolist import SignIn, Todos, assert_common_headers, assert_todo
from tests.racing import all_at_once, statuses

CAP = 5


pytestmark = pytest.mark.usefixtures("keep_os_environ")


@pytest.fixture
def capped(settings: Settings) -> Iterator[None]:
    """Serve with a cap of 5 to-dos per user while the test runs."""
    with installed(settings, todo_limit=CAP):
        yield


def own_client(gateway_client: GatewayClient, token: str) -> Todos:
    """A ``Todos`` on a client of its own (its own gateway), for one thread."""
    client = GatewayClient(gateway_client._app, stage_name="local", project_dir=str(PROJECT_DIR))
    return Todos(Api(client.http), token)


def racing_creates(
    gateway_client: GatewayClient, token: str, texts: list[str]
) -> list[HTTPResponse]:
    clients = [own_client(gateway_client, token) for _ in texts]
    return all_at_once(
        [partial(c.create, {"text": text}) for c, text in zip(clients, texts, strict=True)]
    )


# ------------------------------------------------------------------ concurrency


def test_twenty_simultaneous_creates_are_all_kept(
    gateway_client: GatewayClient, person: SignIn
) -> None:
    me = person()
    texts = [f"parallel {n:02d}" for n in range(20)]

    responses = racing_creates(gateway_client, me.token, texts)

    assert statuses(responses) == Counter({201: 20}), [r.body for r in responses]
    created = [assert_todo(r.json_body) for r in responses]
    # Each request created its own to-do, with its own text.
    assert [t["text"] for t in created] == texts
    assert len({t["id"] for t in created}) == 20
    listed = me.everything(limit=7)
    assert sorted(t["text"] for t in listed) == texts
    assert len({t["id"] for t in listed}) == 20
    assert {t["id"] for t in listed} == {t["id"] for t in created}
    # Newest first holds for to-dos created together, too.
    assert [t["id"] for t in listed] == sorted((t["id"] for t in listed), reverse=True)


def test_simultaneous_creates_by_two_users_land_in_their_own_lists(
    gateway_client: GatewayClient, person: SignIn
) -> None:
    alice, bob = person(), person()
    requests = []
    for n in range(10):
        for who, name in ((alice, "alice"), (bob, "bob")):
            mine = own_client(gateway_client, who.token)
            requests.append(partial(mine.create, {"text": f"{name} {n}"}))

    responses = all_at_once(requests)

    assert statuses(responses) == Counter({201: 20})
    assert sorted(t["text"] for t in alice.everything()) == sorted(f"alice {n}" for n in range(10))
    assert sorted(t["text"] for t in bob.everything()) == sorted(f"bob {n}" for n in range(10))


# ------------------------------------------------------------------ the cap


@pytest.mark.usefixtures("capped")
def test_the_sixth_todo_over_a_cap_of_five_is_a_409_and_is_not_kept(person: SignIn) -> None:
    me = person()
    kept = [me.add(f"slot {n}") for n in range(CAP)]

    response = me.create({"text": "one too many"})

    document = assert_problem(response, 409, "todo_limit_reached")
    assert_common_headers(response)
    assert "5" in document["detail"]
    assert me.everything() == kept[::-1]
    # Still full: a second attempt is refused the same way.
    assert_problem(me.create({"text": "still too many"}), 409, "todo_limit_reached")


@pytest.mark.usefixtures("capped")
def test_at_the_cap_a_todo_can_still_be_read_changed_and_deleted(person: SignIn) -> None:
    me = person()
    kept = [me.add(f"slot {n}") for n in range(CAP)]

    assert me.get(kept[0]["id"]).json_body == kept[0]
    changed = me.patch(kept[0]["id"], {"text": "edited at the cap", "completed": True})
    assert changed.status_code == 200, changed.body
    assert len(me.everything()) == CAP


@pytest.mark.usefixtures("capped")
def test_deleting_one_at_the_cap_allows_exactly_one_more(person: SignIn) -> None:
    me = person()
    kept = [me.add(f"slot {n}") for n in range(CAP)]
    assert_problem(me.create({"text": "refused"}), 409, "todo_limit_reached")

    assert me.delete(kept[2]["id"]).status_code == 204
    again = me.add("fits again")

    assert_problem(me.create({"text": "full again"}), 409, "todo_limit_reached")
    assert {t["id"] for t in me.everything()} == {
        *(t["id"] for t in kept if t is not kept[2]),
        again["id"],
    }


@pytest.mark.usefixtures("capped")
def test_the_cap_is_per_user(person: SignIn) -> None:
    full, other = person(), person()
    for n in range(CAP):
        full.add(f"full {n}")
    assert_problem(full.create({"text": "refused"}), 409, "todo_limit_reached")

    assert [other.add(f"other {n}")["text"] for n in range(CAP)] == [
        f"other {n}" for n in range(CAP)
    ]


@pytest.mark.usefixtures("capped")
def test_refused_creates_do_not_use_up_the_cap(person: SignIn) -> None:
    """Invalid bodies and 409s count nothing: after them, the free slots are still free."""
    me = person()
    for n in range(CAP - 1):
        me.add(f"slot {n}")
    for body in ({"text": ""}, {"text": "x" * 1001}, {"text": 1}, {"text": "a", "x": 1}):
        assert_problem(me.create(body), 400, "validation_error")

    me.add("the last slot")

    assert_problem(me.create({"text": "refused"}), 409, "todo_limit_reached")
    assert len(me.everything()) == CAP


@pytest.mark.usefixtures("capped")
def test_ten_creates_racing_for_the_last_two_slots_give_exactly_two(
    gateway_client: GatewayClient, person: SignIn
) -> None:
    me = person()
    before = [me.add(f"slot {n}") for n in range(CAP - 2)]
    texts = [f"racer {n}" for n in range(10)]

    responses = racing_creates(gateway_client, me.token, texts)

    assert statuses(responses) == Counter({201: 2, 409: 8}), [r.body for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "todo_limit_reached")
    winners = {assert_todo(r.json_body)["id"] for r in responses if r.status_code == 201}
    listed = me.everything()
    assert len(listed) == CAP
    assert {t["id"] for t in listed} == {t["id"] for t in before} | winners


@pytest.mark.usefixtures("capped")
def test_racing_creates_on_an_empty_list_never_exceed_the_cap(
    gateway_client: GatewayClient, person: SignIn
) -> None:
    me = person()

    responses = racing_creates(gateway_client, me.token, [f"racer {n}" for n in range(20)])

    assert statuses(responses) == Counter({201: CAP, 409: 20 - CAP}), [r.body for r in responses]
    assert len(me.everything()) == CAP


@pytest.mark.usefixtures("capped")
def test_simultaneous_deletes_of_one_todo_free_exactly_one_slot(
    gateway_client: GatewayClient, person: SignIn
) -> None:
    me = person()
    kept = [me.add(f"slot {n}") for n in range(CAP)]
    target = kept[0]["id"]
    clients = [own_client(gateway_client, me.token) for _ in range(10)]

    responses = all_at_once([partial(c.delete, target) for c in clients])

    assert statuses(responses) == Counter({204: 1, 404: 9}), [r.body for r in responses]
    # The count went down by one, not by ten: one more fits, and then no more.
    me.add("refill")
    assert_problem(me.create({"text": "over"}), 409, "todo_limit_reached")
    assert len(me.everything()) == CAP
