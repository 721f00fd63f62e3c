"""What every measurement shares: a private DynamoDB Local, the app's services and one user.

Built as the tests build it (tests/conftest.py): an in-memory DynamoDB Local on a free
port, the environment the ``local`` stage reads, the table, and a ``chalice.test.Client``
answering through ``AdaptedGateway``. Unlike the tests it hashes at the deployed bcrypt
cost, because login's budget is relative to that cost.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from chalice.app import Chalice
from chalice.test import HTTPResponse, TestHTTPClient

from bench import PROJECT_DIR
from chalicelib import wiring
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform.config import Settings
from chalicelib.store import table
from scripts.dynamodb_local import DynamoDBLocal, free_port

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: The deployed cost (Settings' default); login's budget is relative to it.
BCRYPT_COST = "12"
STAGE = "local"
TABLE_NAME = "gatehouse-local"
USERNAME = "bench.user"
PASSWORD = "correct horse battery staple"
#: Same length as PASSWORD (bcrypt sees a 44-byte prehash of either anyway).
WRONG_PASSWORD = "correct horse battery stable"


def send(
    client: TestHTTPClient, method: str, path: str, body: Any = None, token: str | None = None
) -> HTTPResponse:
    """One JSON request through a test client, as a real caller would send it."""
    headers = {"Content-Type": "application/json", "User-Agent": "gatehouse-bench"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = b"" if body is None else json.dumps(body).encode()
    return client.request(method, path, headers=headers, body=data)


def expect(response: HTTPResponse, status: int) -> HTTPResponse:
    """Fail loudly: a benchmark of error answers would measure the wrong thing."""
    if response.status_code != status:
        raise RuntimeError(f"expected {status}, got {response.status_code}: {response.body!r}")
    return response


@dataclass(frozen=True)
class Fixture:
    ddb: DynamoDBLocal
    env: dict[str, str]
    settings: Settings
    services: wiring.Services
    api: TestHTTPClient
    token: str
    refresh_token: str

    @property
    def ddb_pid(self) -> int:
        """DynamoDB Local's process id, for CPU accounting."""
        process = self.ddb._process
        if process is None:
            raise RuntimeError("DynamoDB Local is not running")
        return process.pid


@contextmanager
def quiet_log(app: Chalice, sink: IO[str]) -> Iterator[None]:
    """Send the app's JSON access log to ``sink`` (still formatted, so its cost is measured).

    Thousands of lines on the terminal would cost more than the requests they describe;
    a file keeps them for a failure to show.
    """
    handlers = [h for h in app.log.handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(sink) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


def _warm_up(client: DynamoDBClient, table_name: str, requests: int = 300) -> None:
    """Create the table, then let DynamoDB Local's JIT compile its read path.

    A fresh JVM spends twice the CPU per request for its first few hundred requests;
    warming it here keeps that out of whichever figure happens to run first.
    """
    table.create_table(client, table_name)
    key = {"pk": {"S": "WARMUP#-"}, "sk": {"S": "WARMUP"}}
    client.put_item(TableName=table_name, Item={**key, "type": {"S": "warmup"}})
    for _ in range(requests):
        client.get_item(TableName=table_name, Key=key, ConsistentRead=True)


@contextmanager
def started() -> Iterator[Fixture]:
    """DynamoDB Local, the environment, the table, the services, one user and a token."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-bench-")))
        ddb = DynamoDBLocal(free_port())
        ddb.start()
        stack.callback(ddb.stop)
        env = {
            "GATEHOUSE_STAGE": STAGE,
            "DDB_ENDPOINT": ddb.endpoint,
            "BCRYPT_COST": BCRYPT_COST,
            "KEY_FILE": str(tmp / "signing-keys.json"),
            "TABLE_NAME": TABLE_NAME,
        }
        os.environ.update(env)
        settings = Settings.from_env()
        _warm_up(table.connect(settings), settings.table_name)
        built = wiring.Services.build(settings)
        wiring.install(built)

        from app import app  # noqa: PLC0415 - only once the environment is set

        app_log = tmp / "app.log"
        sink = stack.enter_context(app_log.open("w", encoding="utf-8"))
        stack.enter_context(quiet_log(app, sink))
        client = stack.enter_context(
            GatewayClient(app, stage_name=STAGE, project_dir=str(PROJECT_DIR))
        )
        try:
            yield _signed_in(ddb, env, settings, built, client.http)
        except Exception:
            sink.flush()
            _show_tail(app_log)
            raise


def sign_up(api: TestHTTPClient, username: str, password: str = PASSWORD) -> tuple[str, str]:
    """Register ``username`` and log in once: its (access, refresh) tokens."""
    expect(send(api, "POST", "/register", {"username": username, "password": password}), 201)
    return log_in(api, username, password)


def log_in(api: TestHTTPClient, username: str, password: str = PASSWORD) -> tuple[str, str]:
    """A new session for an existing user: its (access, refresh) tokens."""
    pair = expect(send(api, "POST", "/login", {"username": username, "password": password}), 200)
    tokens = pair.json_body
    return str(tokens["access_token"]), str(tokens["refresh_token"])


def _signed_in(
    ddb: DynamoDBLocal,
    env: dict[str, str],
    settings: Settings,
    built: wiring.Services,
    api: TestHTTPClient,
) -> Fixture:
    """Register the bench user and log in once: the tokens every figure starts from."""
    access, refresh = sign_up(api, USERNAME)
    return Fixture(ddb, env, settings, built, api, access, refresh)


@contextmanager
def client_from(source_ip: str) -> Iterator[TestHTTPClient]:
    """Another adapted test client, whose requests come from ``source_ip``.

    A failed login counts against the client's IP as well as the account name
    (throttle.py: 100 an hour per IP). Every other figure, and the servers' own logins,
    come from the gateway's 127.0.0.1; a measurement that fails logins on purpose uses
    an address of its own (TEST-NET, RFC 5737), so it cannot lock the rest of the run out.
    """
    from app import app  # noqa: PLC0415 - imported by ``started`` already, env set

    with GatewayClient(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        api = client.http
        api._local_gateway.event_converter.LOCAL_SOURCE_IP = source_ip
        yield api


@contextmanager
def installed(built: wiring.Services, restore: wiring.Services) -> Iterator[None]:
    """Serve requests with ``built`` (other settings, same table), then with ``restore``."""
    wiring.install(built)
    try:
        yield
    finally:
        wiring.install(restore)


def _show_tail(log: Path, lines: int = 40) -> None:
    """On failure, the app's own log says why (it is kept off the terminal otherwise)."""
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    print(f"--- last {len(tail)} lines of the app's log ({log.name}):", file=sys.stderr)
    print("\n".join(tail), file=sys.stderr)
