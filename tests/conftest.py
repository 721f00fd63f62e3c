"""Shared fixtures: one in-memory DynamoDB Local per test session, and a
``chalice.test.Client`` whose gateway is the same ``AdaptedGateway`` the local runner
uses, so tests see exactly what ``make run`` (and API Gateway) answers.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.local import LocalChalice
from chalice.test import HTTPResponse, TestHTTPClient

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from chalicelib import wiring  # noqa: E402
from chalicelib.edge.localgateway import GatewayClient  # noqa: E402
from chalicelib.platform.config import Settings  # noqa: E402
from chalicelib.store import table  # noqa: E402
from scripts.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402

#: Tests hash at the lowest bcrypt cost; the benchmark measures the real one.
TEST_BCRYPT_COST = "4"


@pytest.fixture(scope="session")
def dynamodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    """A private, in-memory DynamoDB Local on a free port, with the table created."""
    ddb = DynamoDBLocal(free_port())
    ddb.start()
    key_file = tmp_path_factory.mktemp("keys") / "signing-keys.json"
    os.environ.update(
        {
            "GATEHOUSE_STAGE": "local",
            "DDB_ENDPOINT": ddb.endpoint,
            "BCRYPT_COST": TEST_BCRYPT_COST,
            "KEY_FILE": str(key_file),
            "TABLE_NAME": "gatehouse-local",
            "OUTBOX_DIR": str(key_file.parent / "outbox"),
            # Every test request comes from 127.0.0.1: the per-IP limits are tested on
            # their own, with their own services (tests/functional/test_throttle.py,
            # test_abuse.py, test_passkeys_abuse.py).
            "THROTTLE_IP": "1000000/1000000",
            "THROTTLE_REGISTER": "1000000/1000000",
            "PASSKEY_OPTIONS_LIMIT": "1000000/1000000",
            # Every test shares one DynamoDB Local JVM on a small machine, where a GC pause
            # under a 50-client race can outlast the deployed 2 s read timeout and turn into
            # a 503 that says nothing about Gatehouse. Faults are tested on their own
            # (tests/e2e/test_faults.py), with the deployed timeout.
            "DYNAMODB_READ_TIMEOUT_MS": "10000",
        }
    )
    settings = Settings.from_env()
    table.create_table(table.connect(settings), settings.table_name)
    yield ddb
    ddb.stop()


@pytest.fixture(scope="session")
def settings(dynamodb: DynamoDBLocal) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def app_services(settings: Settings) -> wiring.Services:
    built = wiring.Services.build(settings)
    wiring.install(built)
    return built


class Api:
    """A thin JSON helper over the test client: ``api.post("/login", {...})``."""

    def __init__(self, client: TestHTTPClient) -> None:
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> HTTPResponse:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self.client.request(method, path, headers=sent, body=data)

    def get(self, path: str, **kwargs: Any) -> HTTPResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> HTTPResponse:
        return self.request("POST", path, body, **kwargs)


def thread_local_requests(app: Chalice) -> None:
    """Give ``app`` a per-thread ``current_request``, as ``chalice local`` and our runner do.

    A plain ``Chalice`` keeps one ``current_request`` per app object (right on Lambda, one
    request per container); the threaded local server swaps the class for ``LocalChalice``.
    Without this, concurrent test requests could read each other's bodies.
    """
    if not isinstance(app, LocalChalice):
        app.__class__ = type("ThreadLocalChalice", (LocalChalice, type(app)), {})


@pytest.fixture(scope="session")
def gateway_client(app_services: wiring.Services) -> GatewayClient:
    # Imported here, not at the top: app.py must load after the environment is set.
    from app import app  # noqa: PLC0415

    thread_local_requests(app)
    return GatewayClient(app, stage_name="local", project_dir=str(PROJECT_DIR))


@pytest.fixture
def keep_os_environ() -> Iterator[None]:
    """Put the real ``os.environ`` back after a test that sends from several threads.

    ``chalice.test`` swaps ``os.environ`` for a copy around each request; overlapping
    requests can restore each other's copy, leaving a plain dict behind (same contents).
    """
    original = os.environ
    yield
    os.environ = original  # noqa: B003 - restoring the object itself, not its contents


@pytest.fixture
def api(gateway_client: GatewayClient) -> Api:
    return Api(gateway_client.http)


@pytest.fixture
def new_user(api: Api) -> Callable[..., dict[str, Any]]:
    """Register a fresh user; returns the registration body plus the created ``user``."""
    counter = iter(range(1_000_000))

    def make(password: str = "correct horse battery staple", **fields: Any) -> dict[str, Any]:
        username = fields.pop("username", f"user{os.getpid()}x{next(counter)}{os.urandom(3).hex()}")
        body = {"username": username, "password": password, **fields}
        response = api.post("/register", body)
        assert response.status_code == 201, response.body
        return {**body, "user": response.json_body["user"]}

    return make


@pytest.fixture
def login(api: Api) -> Callable[[str, str], dict[str, Any]]:
    def do(username: str, password: str) -> dict[str, Any]:
        response = api.post("/login", {"username": username, "password": password})
        assert response.status_code == 200, response.body
        return dict(response.json_body)

    return do
