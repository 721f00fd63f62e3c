"""Reliability under faults: the store goes down and comes back, the key source is
unreadable, DynamoDB throttles. Every case answers 503 ``service_unavailable`` with
``Retry-After`` (never a 500, never a hang), and the service heals by itself.

The faults are real: a DynamoDB Local of this module's own is stopped and started again
(the session's shared one is never touched), key files are really corrupt, and the
throttling answers come from botocore's own stubbing on a client built here. Requests go
through the adapted test gateway, each in a thread with a generous bound, so a hang fails
the test instead of stalling the run. Nothing measures time.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.stub import Stubber
from chalice.test import HTTPResponse

from chalicelib.accounts.throttle import Policy, Throttle
from chalicelib.crypto.keys import KeyCache, KeyDocument, LocalKeyFile
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform import errors
from chalicelib.platform.config import Settings
from chalicelib.store import table
from chalicelib.store.items import UserRecord, session_key
from scripts.dynamodb_local import DynamoDBLocal, free_port
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, api_at, installed, unique_ip

#: A request that has not answered after this long is a hang (the store's client gives
#: up after a few seconds: 1 s connect, 2 s read (``DYNAMODB_READ_TIMEOUT_MS``), 3 attempts).
HANG_SECONDS = 20.0


def bounded(call: Callable[[], HTTPResponse]) -> HTTPResponse:
    """Run ``call`` in a thread; fail the test if it does not return within the bound."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = call()
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_SECONDS)
    if worker.is_alive():
        pytest.fail(f"the request did not answer within {HANG_SECONDS} s (a hang)")
    if "error" in outcome:
        raise outcome["error"]
    response = outcome["response"]
    assert isinstance(response, HTTPResponse)
    return response


def header(response: HTTPResponse, name: str) -> str:
    return next((str(v) for k, v in response.headers.items() if k.lower() == name.lower()), "")


def assert_unavailable(response: HTTPResponse, what: str) -> None:
    """The contract's 503: a problem document, ``service_unavailable``, ``Retry-After``."""
    assert response.status_code == 503, (what, response.status_code, response.body)
    assert header(response, "Content-Type").startswith("application/problem+json"), what
    body = json.loads(response.body)
    assert body["code"] == "service_unavailable", (what, body)
    assert body["status"] == 503, (what, body)
    assert header(response, "Retry-After").isdigit(), (what, response.headers)
    assert int(header(response, "Retry-After")) > 0, what
    text = response.body.decode("utf-8", "replace")
    for leak in ("Traceback", "botocore", "Exception", "127.0.0.1", "dynamodb"):
        assert leak not in text, (what, leak, text)


def assert_health_unavailable(response: HTTPResponse, checks: dict[str, str]) -> None:
    assert response.status_code == 503, (response.status_code, response.body)
    assert json.loads(response.body) == {"status": "unavailable", "checks": checks}
    assert header(response, "Retry-After").isdigit(), response.headers


def start_store(port: int, data_dir: Path | None = None) -> DynamoDBLocal:
    """A DynamoDB Local on ``port`` (in memory, or on disk under ``data_dir``)."""
    ddb = DynamoDBLocal(port, data_dir)
    ddb.start()
    return ddb


def create_table(settings: Settings) -> None:
    table.create_table(table.connect(settings), settings.table_name)


def table_items(settings: Settings) -> list[dict[str, Any]]:
    client = table.connect(settings)
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(
        TableName=settings.table_name, ConsistentRead=True
    ):
        found.extend(page.get("Items", []))
    return found


@pytest.fixture
def own_api(gateway_client: GatewayClient) -> Api:
    """The session's app through the adapted gateway, calling from an address of its own
    (so the per-IP throttle of other tests never counts these requests)."""
    return api_at(gateway_client, unique_ip())


# ------------------------------------------------------------------ the store goes down


def test_with_the_store_down_every_route_is_503_and_it_heals_by_itself(
    own_api: Api, settings: Settings, tmp_path: Path
) -> None:
    ddb = start_store(free_port())
    port = ddb.port
    running = [ddb]
    own_settings = {"dynamodb_endpoint": ddb.endpoint, "outbox_dir": tmp_path / "outbox"}
    try:
        with installed(settings, **own_settings) as built:
            create_table(built.settings)
            api = own_api
            username = f"fault{unique_ip().replace('.', '')}"
            email = f"{username}@example.com"
            registered = api.post(
                "/register", {"username": username, "password": PASSWORD, "email": email}
            )
            assert registered.status_code == 201, registered.body
            pair = api.post("/login", {"username": username, "password": PASSWORD}).json_body
            token, refresh = pair["access_token"], pair["refresh_token"]
            assert api.get("/health").status_code == 200

            ddb.stop()
            running.clear()

            calls: dict[str, Callable[[], HTTPResponse]] = {
                "POST /register": lambda: api.post(
                    "/register", {"username": f"{username}b", "password": PASSWORD}
                ),
                "POST /login": lambda: api.post(
                    "/login", {"username": username, "password": PASSWORD}
                ),
                "POST /token/refresh": lambda: api.post(
                    "/token/refresh", {"refresh_token": refresh}
                ),
                "GET /protected": lambda: api.get("/protected", token=token),
                "GET /me": lambda: api.get("/me", token=token),
                "GET /todos": lambda: api.get("/todos", token=token),
                "POST /todos": lambda: api.post("/todos", {"text": "x"}, token=token),
                "POST /password/forgot": lambda: api.post("/password/forgot", {"email": email}),
            }
            for what, call in calls.items():
                assert_unavailable(bounded(call), what)
            assert_health_unavailable(
                bounded(lambda: api.get("/health")), {"table": "unavailable", "keys": "ok"}
            )

            # The store comes back on the same port (in memory: empty, table re-created).
            # The same services and client objects now work again, with no restart.
            running.append(start_store(port))
            create_table(built.settings)
            assert bounded(lambda: api.get("/health")).status_code == 200
            again = bounded(
                lambda: api.post("/register", {"username": username, "password": PASSWORD})
            )
            assert again.status_code == 201, again.body
            logged_in = bounded(
                lambda: api.post("/login", {"username": username, "password": PASSWORD})
            )
            assert logged_in.status_code == 200, logged_in.body
            fresh = logged_in.json_body["access_token"]
            protected = bounded(lambda: api.get("/protected", token=fresh))
            assert protected.status_code == 200, protected.body
            assert protected.json_body["user"]["username"] == username
    finally:
        for process in running:
            process.stop()


def test_a_frozen_store_is_503_within_the_timeouts_not_a_hang(
    own_api: Api, settings: Settings, tmp_path: Path
) -> None:
    """A store that accepts connections but never answers (the JVM stopped with
    SIGSTOP) costs the client its read timeout per attempt, then a 503; when the store
    thaws, the same services answer again."""
    ddb = start_store(free_port())
    own_settings = {
        "dynamodb_endpoint": ddb.endpoint,
        "dynamodb_read_timeout": 1.0,
        "outbox_dir": tmp_path / "outbox",
    }
    assert ddb.pid is not None
    try:
        with installed(settings, **own_settings) as built:
            create_table(built.settings)
            assert own_api.get("/health").status_code == 200
            os.kill(ddb.pid, signal.SIGSTOP)
            try:
                login = {"username": "frozen-store", "password": PASSWORD}
                assert_unavailable(bounded(lambda: own_api.post("/login", login)), "login")
                assert_health_unavailable(
                    bounded(lambda: own_api.get("/health")), {"table": "unavailable", "keys": "ok"}
                )
            finally:
                os.kill(ddb.pid, signal.SIGCONT)
            assert bounded(lambda: own_api.get("/health")).status_code == 200
    finally:
        ddb.stop()


def test_a_register_whose_transaction_failed_leaves_no_half_written_account(
    own_api: Api, settings: Settings, tmp_path: Path
) -> None:
    """On disk this time, so what was (not) written survives the outage: the failed
    register left neither a guard nor a user, and the name is still free."""
    data = tmp_path / "ddb"
    ddb = start_store(free_port(), data)
    port = ddb.port
    running = [ddb]
    try:
        with installed(settings, dynamodb_endpoint=ddb.endpoint) as built:
            create_table(built.settings)
            api = own_api
            kept = f"kept{unique_ip().replace('.', '')}"
            lost = f"lost{unique_ip().replace('.', '')}"
            first = api.post("/register", {"username": kept, "password": PASSWORD})
            assert first.status_code == 201, first.body
            before = table_items(built.settings)

            ddb.stop()
            running.clear()
            failed = bounded(
                lambda: api.post(
                    "/register",
                    {"username": lost, "password": PASSWORD, "email": f"{lost}@example.com"},
                )
            )
            assert_unavailable(failed, "POST /register")

            running.append(start_store(port, data))
            after = table_items(built.settings)
            assert after == before  # the data survived the outage, and nothing was added
            assert not [i for i in after if lost in json.dumps(i)]
            assert api.post("/login", {"username": kept, "password": PASSWORD}).status_code == 200
            retried = api.post(
                "/register",
                {"username": lost, "password": PASSWORD, "email": f"{lost}@example.com"},
            )
            assert retried.status_code == 201, retried.body
    finally:
        for process in running:
            process.stop()


# ------------------------------------------------------------------ the key source


BROKEN_KEY_FILES: dict[str, Callable[[Path], object]] = {
    "not json": lambda p: p.write_text("{not json", "utf-8"),
    "empty": lambda p: p.write_text("", "utf-8"),
    "binary": lambda p: p.write_bytes(b"\xff\xfe\x00garbage"),
    "a json array": lambda p: p.write_text("[]", "utf-8"),
    "json null": lambda p: p.write_text("null", "utf-8"),
    "keys not a list": lambda p: p.write_text('{"keys": "abc"}', "utf-8"),
    "a pem that is not a string": lambda p: p.write_text(
        '{"keys": [{"kid": "k", "private_pem": 5}]}', "utf-8"
    ),
    "a directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("broken", list(BROKEN_KEY_FILES))
def test_an_unreadable_key_file_is_503_for_login_and_health(
    own_api: Api,
    settings: Settings,
    new_user: Callable[..., dict[str, Any]],
    tmp_path: Path,
    broken: str,
) -> None:
    user = new_user()  # registered with the session's services (their keys are fine)
    key_file = tmp_path / "signing-keys.json"
    BROKEN_KEY_FILES[broken](key_file)
    with installed(settings, key_file=key_file):
        login = bounded(
            lambda: own_api.post("/login", {"username": user["username"], "password": PASSWORD})
        )
        assert_unavailable(login, f"POST /login, key file {broken}")
        assert_health_unavailable(
            bounded(lambda: own_api.get("/health")), {"table": "ok", "keys": "unavailable"}
        )


@pytest.mark.parametrize("broken", list(BROKEN_KEY_FILES))
def test_a_loaded_ring_keeps_working_when_the_key_file_becomes_unreadable(
    tmp_path: Path, broken: str
) -> None:
    """The cache re-reads the file (it is stale, or a token names an unknown kid); the
    read fails however the file broke, and the last good ring keeps serving."""
    path = tmp_path / "signing-keys.json"
    document = KeyDocument.new(0).with_data_key()
    LocalKeyFile(path).write(document)
    now = [0.0]
    cache = KeyCache(LocalKeyFile(path), lambda: now[0], max_age=10, reload_gap=1)
    assert cache.ring.signing.kid == document.signing_kid

    path.unlink()
    BROKEN_KEY_FILES[broken](path)
    now[0] += 11
    assert cache.ring.signing.kid == document.signing_kid
    now[0] += 2
    assert cache.verifying_key("a-kid-from-elsewhere") is None
    assert cache.verifying_key(document.signing_kid) is not None


# ------------------------------------------------------------------ throttled DynamoDB


THROTTLES = ("ProvisionedThroughputExceededException", "ThrottlingException")


def separate_client() -> Any:
    """A DynamoDB client of this test's own, configured as the service's (retries too),
    pointed at an endpoint nothing listens on: every answer comes from the stubs."""
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    return session.client("dynamodb", endpoint_url="http://127.0.0.1:9", config=table.CLIENT_CONFIG)


@pytest.mark.parametrize("code", THROTTLES)
def test_a_throttled_read_is_503(code: str) -> None:
    client = separate_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        with pytest.raises(errors.ServiceUnavailable):
            table.Store(client, "gatehouse").get_user("someone")
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", THROTTLES)
def test_a_throttled_registration_transaction_is_503(code: str) -> None:
    client = separate_client()
    user = UserRecord(
        id="u1",
        username="someone",
        username_key="someone",
        email=None,
        email_key=None,
        display_name=None,
        password_hash="x",
        email_verified=False,
        mfa_enabled=False,
        disabled=False,
        created_at=0,
    )
    with Stubber(client) as stub:
        stub.add_client_error("transact_write_items", service_error_code=code, http_status_code=400)
        with pytest.raises(errors.ServiceUnavailable):
            table.Store(client, "gatehouse").create_user(user)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", THROTTLES)
def test_throttling_is_retried_by_botocore_then_503(code: str) -> None:
    """Below the Stubber, at the wire: every attempt answers the throttling error.
    botocore retries it (3 attempts in all, standard mode), then the Store says 503."""
    client = separate_client()
    sent: list[str] = []

    def throttled(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "slow"})
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = "throttled"
        return AWSResponse(request.url, 400, headers, _Raw(body.encode()))

    client.meta.events.register("before-send.dynamodb.GetItem", throttled)
    with pytest.raises(errors.ServiceUnavailable):
        table.Store(client, "gatehouse").get_user("someone")
    assert len(sent) == 4  # the first attempt and 3 retries


def test_a_batch_delete_retries_what_dynamodb_left_unprocessed_then_503() -> None:
    """BatchWriteItem answers 200 with ``UnprocessedItems`` when throttled, which botocore
    does not retry: the store sends those again, and gives up with a 503."""
    client = separate_client()
    keys = [session_key("u1", f"s{n}") for n in range(3)]
    every = {"gatehouse": [{"DeleteRequest": {"Key": k}} for k in keys]}
    left = {"gatehouse": every["gatehouse"][2:]}
    with Stubber(client) as stub:
        stub.add_response("batch_write_item", {"UnprocessedItems": left}, {"RequestItems": every})
        stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": left})
        table.Store(client, "gatehouse").clear_counters(keys)
        stub.assert_no_pending_responses()
    calls: list[str] = []

    def count(**_: Any) -> None:
        calls.append("BatchWriteItem")

    client.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", count)
    with Stubber(client) as stub:
        for request in (every, *[left] * 4):
            stub.add_response(
                "batch_write_item", {"UnprocessedItems": left}, {"RequestItems": request}
            )
        with pytest.raises(errors.ServiceUnavailable):
            table.Store(client, "gatehouse").clear_counters(keys)
        stub.assert_no_pending_responses()
    assert len(calls) == 5  # the first try and 4 retries, then no more


def test_a_claim_that_conflicts_through_every_retry_is_429_not_503() -> None:
    """Claims on one account racing in a real DynamoDB can conflict (TransactionConflict).
    After the retries the attempt is refused as too many at once (429, Retry-After 1),
    with no password checked: not a 503 that blames the store."""
    client = separate_client()
    throttle = Throttle(table.Store(client, "gatehouse"), Policy(), time.time)
    reasons = [{"Code": "TransactionConflict"}, {"Code": "None"}]
    with Stubber(client) as stub:
        for _ in range(5):
            stub.add_client_error(
                "transact_write_items",
                service_error_code="TransactionCanceledException",
                http_status_code=400,
                response_meta=None,
                modeled_fields={"CancellationReasons": reasons},
            )
        with pytest.raises(errors.TooManyAttempts) as refused:
            throttle.claim(throttle.counters(account="someone"))
        stub.assert_no_pending_responses()
    assert refused.value.retry_after == 1


class _Raw:
    """The raw body botocore reads from an ``AWSResponse``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data
