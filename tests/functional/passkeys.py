"""Helpers shared by the passkey tests: enrol through the API, ask for options, sign in.

The payloads come from the software authenticator in tests/webauthn_authenticator.py;
nothing here stands in for Gatehouse's own code.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from chalice.test import HTTPResponse

from chalicelib.platform.config import Settings
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, client
from tests.webauthn_authenticator import Authenticator, unb64


def creation_options(api: Api, token: str, **step_up: Any) -> dict[str, Any]:
    response = api.post("/me/passkeys/options", {"password": PASSWORD, **step_up}, token=token)
    assert response.status_code == 200, response.body
    return dict(response.json_body["options"])


def enrol(
    api: Api, token: str, authenticator: Authenticator, name: str | None = None, **step_up: Any
) -> dict[str, Any]:
    """Enrol a new passkey of ``authenticator``; the contract's ``Passkey``."""
    credential = authenticator.create(creation_options(api, token, **step_up))
    body: dict[str, Any] = {"credential": credential}
    if name is not None:
        body["name"] = name
    response = api.post("/me/passkeys", body, token=token)
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def request_options(api: Api, username: str | None = None) -> dict[str, Any]:
    body = {} if username is None else {"username": username}
    response = api.post("/passkeys/options", body)
    assert response.status_code == 200, response.body
    return dict(response.json_body["options"])


def passkey_login(api: Api, credential: dict[str, Any], **extra: Any) -> HTTPResponse:
    return api.post("/passkeys/login", {"credential": credential, **extra})


def sign_in(api: Api, authenticator: Authenticator, **changes: Any) -> HTTPResponse:
    """Discoverable sign-in: fresh options, an assertion (with ``changes``), the login."""
    return passkey_login(api, authenticator.get(request_options(api), **changes))


def passkeys_of(api: Api, token: str) -> list[dict[str, Any]]:
    response = api.get("/me/passkeys", token=token)
    assert response.status_code == 200, response.body
    return list(response.json_body["passkeys"])


def events(api: Api, token: str, kind: str) -> list[str]:
    """The outcomes of the user's ``kind`` events, newest first."""
    listed = api.get("/me/activity", token=token).json_body["events"]
    return [e["outcome"] for e in listed if e["type"] == kind]


@dataclass
class Holder:
    """A user signed in with a password, holding one passkey of ``authenticator``."""

    username: str
    user_id: str
    token: str
    authenticator: Authenticator
    passkey: dict[str, Any]


def holder_of(api: Api, user: dict[str, Any], token: str, **step_up: Any) -> Holder:
    authenticator = Authenticator()
    passkey = enrol(api, token, authenticator, **step_up)
    return Holder(user["username"], user["user"]["id"], token, authenticator, passkey)


def challenge_item_key(options: dict[str, Any]) -> dict[str, Any]:
    """The table key of an options answer's challenge (stored under its SHA-256)."""
    digest = hashlib.sha256(unb64(options["challenge"])).hexdigest()
    return {"pk": {"S": f"CHALLENGE#{digest}"}, "sk": {"S": "CHALLENGE"}}


def expire(settings: Settings, options: dict[str, Any]) -> None:
    """Let the options' challenge pass its deadline while DynamoDB's lazy TTL has not
    yet reaped it: its ``expires_at`` moves into the past, nothing else changes."""
    client(settings).update_item(
        TableName=settings.table_name,
        Key=challenge_item_key(options),
        UpdateExpression="SET expires_at = :past",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
