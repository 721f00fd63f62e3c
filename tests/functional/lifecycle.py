"""Helpers shared by the account protection and lifecycle tests.

Nothing here stands in for our own code: the helpers read what a user (or an operator)
could read anyway (the outbox, the table), install real ``Services`` built from other
settings, and let the test gateway report another client address, as API Gateway does
for each caller.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp
from chalice.app import Chalice
from chalice.config import Config
from chalice.test import HTTPResponse, TestHTTPClient

from chalicelib import wiring
from chalicelib.accounts.throttle import Counter
from chalicelib.edge.localgateway import AdaptedGateway, GatewayClient
from chalicelib.platform.config import Settings
from chalicelib.store import table
from tests.conftest import PROJECT_DIR, Api

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PASSWORD = "correct horse battery staple"
RESET_MARKER = "POST /password/reset: "
VERIFY_MARKER = "POST /email/verify: "

# ------------------------------------------------------------------ requests


def patch(api: Api, path: str, body: Any, *, token: str) -> HTTPResponse:
    return api.request("PATCH", path, body, token=token)


def delete(api: Api, path: str, body: Any = None, *, token: str) -> HTTPResponse:
    return api.request("DELETE", path, body, token=token)


def comparable_headers(response: HTTPResponse, *ignored: str) -> dict[str, str]:
    """The response headers, lower-cased, without the request id and ``ignored`` ones."""
    skip = {"x-request-id", *(name.lower() for name in ignored)}
    return {k.lower(): str(v) for k, v in response.headers.items() if k.lower() not in skip}


def unique_ip() -> str:
    """A documentation-range address (RFC 5737) no other test sends from."""
    raw = os.urandom(2)
    return f"198.51.{raw[0]}.{raw[1]}"


class _GatewayAt(AdaptedGateway):
    """The adapted gateway, reporting ``source_ip`` as the caller's address."""

    def __init__(self, app: Chalice, config: Config, source_ip: str) -> None:
        super().__init__(app, config)
        self._source_ip = source_ip

    def _generate_lambda_event(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        event = super()._generate_lambda_event(method, path, headers, body)
        event["requestContext"]["identity"]["sourceIp"] = self._source_ip
        return event


class ClientAt(GatewayClient):
    """A test client whose requests come from ``source_ip``."""

    def __init__(self, app: Chalice, source_ip: str) -> None:
        super().__init__(app, stage_name="local", project_dir=str(PROJECT_DIR))
        self._source_ip = source_ip

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            client = TestHTTPClient(self._app, self._chalice_config)
            client._local_gateway = _GatewayAt(self._app, self._chalice_config, self._source_ip)
            self._http_client = client
        return self._http_client


def api_at(gateway_client: GatewayClient, source_ip: str) -> Api:
    """An ``Api`` on the same app as ``gateway_client``, calling from ``source_ip``."""
    return Api(ClientAt(gateway_client._app, source_ip).http)


# ------------------------------------------------------------------ services


@contextlib.contextmanager
def installed(settings: Settings, **changes: Any) -> Iterator[wiring.Services]:
    """Serve requests with services built from ``settings`` with ``changes``, then put
    the session's services back, whatever happens."""
    before = wiring.get()
    built = wiring.Services.build(replace(settings, **changes))
    wiring.install(built)
    try:
        yield built
    finally:
        wiring.install(before)


def same_window(margin: int = 45) -> None:
    """Wait out the last seconds of a clock hour, so that a test which counts failures
    up to an hourly limit does not straddle two fixed windows."""
    left = 3600 - time.time() % 3600
    if left < margin:
        time.sleep(left + 1)


# ------------------------------------------------------------------ the table


def client(settings: Settings) -> DynamoDBClient:
    return table.connect(settings)


def counts(app_services: wiring.Services, counters: Sequence[Counter]) -> list[int]:
    """What each throttle counter holds now, read from the table (0 where none is)."""
    table = client(app_services.settings)
    found = []
    for counter in counters:
        item = table.get_item(
            TableName=app_services.settings.table_name, Key=counter.item_key, ConsistentRead=True
        ).get("Item", {})
        found.append(int(item.get("failures", {}).get("N", "0")))
    return found


def partition(settings: Settings, user_id: str) -> list[dict[str, Any]]:
    """Every item of ``USER#<id>``, read straight from DynamoDB."""
    found: list[dict[str, Any]] = []
    pages = (
        client(settings)
        .get_paginator("query")
        .paginate(
            TableName=settings.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"USER#{user_id}"}},
            ConsistentRead=True,
        )
    )
    for page in pages:
        found.extend(page.get("Items", []))
    return found


def sort_key_kinds(items: list[dict[str, Any]]) -> set[str]:
    return {item["sk"]["S"].split("#", 1)[0] for item in items}


def table_dump(settings: Settings) -> str:
    """The whole table as text, as a leaked backup would show it."""
    dumped: list[dict[str, Any]] = []
    pages = (
        client(settings)
        .get_paginator("scan")
        .paginate(TableName=settings.table_name, ConsistentRead=True)
    )
    for page in pages:
        dumped.extend(page.get("Items", []))
    return json.dumps(dumped)


# ------------------------------------------------------------------ mail


def _directory(where: Settings | Path) -> Path:
    return where.outbox_dir if isinstance(where, Settings) else where


def outbox(where: Settings | Path) -> list[Path]:
    """The ``.eml`` files of an outbox (the settings' one, or a directory), oldest first."""
    directory = _directory(where)
    return sorted(directory.glob("*.eml")) if directory.exists() else []


def mail_to(where: Settings | Path, address: str) -> list[EmailMessage]:
    """Every message in the outbox addressed to ``address``, oldest first."""
    found = []
    for path in outbox(where):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if str(message["To"]).lower() == address.lower():
            found.append(message)
    return found


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def token_in(message: EmailMessage, marker: str) -> str:
    text = body_of(message)
    assert marker in text, text
    return text.split(marker, 1)[1].split()[0]


def last_token(where: Settings | Path, address: str, marker: str) -> str:
    """The token of the newest message to ``address`` that carries ``marker``."""
    messages = [m for m in mail_to(where, address) if marker in body_of(m)]
    assert messages, f"no mail with {marker!r} to {address}"
    return token_in(messages[-1], marker)


def verify_address(api: Api, where: Settings | Path, address: str) -> None:
    """Verify ``address`` with the newest verification link mailed to it."""
    token = last_token(where, address, VERIFY_MARKER)
    response = api.post("/email/verify", {"token": token})
    assert response.status_code == 204, response.body


# ------------------------------------------------------------------ TOTP


def wrong_code(secret: str) -> str:
    """A six-digit code that is none of the codes valid around now."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(
        code
        for code in ("000000", "111111", "222222", "333333", "444444", "555555")
        if code not in valid
    )


def enable_totp(api: Api, token: str, password: str = PASSWORD) -> tuple[str, list[str]]:
    """Turn TOTP on for the token's user (whose password is ``password``); its secret and
    recovery codes."""
    enrolled = api.post("/me/mfa/totp", {"password": password}, token=token)
    assert enrolled.status_code == 200, enrolled.body
    secret = str(enrolled.json_body["secret"])
    confirmed = api.post("/me/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, token=token)
    assert confirmed.status_code == 200, confirmed.body
    return secret, list(confirmed.json_body["recovery_codes"])


def retry_after(response: HTTPResponse) -> int:
    """The ``Retry-After`` of a 429, checked to be whole seconds in the future."""
    value = next((str(v) for k, v in response.headers.items() if k.lower() == "retry-after"), "")
    assert value.isdigit(), response.headers
    assert int(value) > 0
    return int(value)
