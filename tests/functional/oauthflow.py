"""A relying party's side of the code flow, driven through the test client.

Only what any OAuth client does (PKCE, the authorization redirect, the token request),
written against the contract; the independent clients (authlib, openid-client) are in
the e2e tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from chalice.test import HTTPResponse

from chalicelib import wiring
from chalicelib.oauth.clients import ClientRegistration
from tests.assertions import header
from tests.conftest import Api

REDIRECT_URI = "https://rp.example/callback"
FORM = "application/x-www-form-urlencoded"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Client:
    """A registered client and the requests it makes."""

    api: Api
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT_URI
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def authorize(self, **params: str) -> HTTPResponse:
        """GET /oauth2/authorize with a valid S256 request, ``params`` overriding (an
        empty value drops the parameter)."""
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email offline_access",
            "state": "st-" + os.urandom(4).hex(),
            "nonce": "n-" + os.urandom(4).hex(),
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
            **params,
        }
        query = {k: v for k, v in query.items() if v != ""}
        return self.api.client.request("GET", "/oauth2/authorize?" + urlencode(query))

    def token(self, form: dict[str, str], *, auth: str | None = "basic") -> HTTPResponse:
        headers = {"Content-Type": FORM}
        body = dict(form)
        if auth == "basic" and self.secret:
            headers["Authorization"] = basic(self.client_id, self.secret)
        elif auth == "post":
            body |= {"client_id": self.client_id, "client_secret": self.secret or ""}
        elif auth == "none":
            body["client_id"] = self.client_id
        return self.api.client.request(
            "POST", "/oauth2/token", headers=headers, body=urlencode(body).encode()
        )

    def exchange(self, code: str, **overrides: str) -> HTTPResponse:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
            **overrides,
        }
        return self.token(form, auth="basic" if self.secret else "none")


def register_client(
    api: Api, *, public: bool = False, redirect_uris: tuple[str, ...] = (REDIRECT_URI,)
) -> Client:
    clients = wiring.get().clients
    record, secret = clients.register(
        ClientRegistration(name="Wiki", redirect_uris=redirect_uris, public=public)
    )
    return Client(api, record.id, secret, redirect_uris[0])


def consent(api: Api, token: str, location: str, decision: str = "allow") -> dict[str, str]:
    """The web page's part: read the request, decide; the client's redirect's query."""
    request_id = query_of(location)["request_id"]
    described = api.get(f"/oauth2/requests/{request_id}", token=token)
    assert described.status_code == 200, described.body
    decided = api.post(f"/oauth2/requests/{request_id}", {"decision": decision}, token=token)
    assert decided.status_code == 200, decided.body
    return query_of(decided.json_body["redirect_to"])


def allowed(client: Client, token: str, **params: str) -> dict[str, str]:
    """Authorize and allow as the user ``token`` belongs to: the query the client's
    redirect URI receives (``code``, ``state``, ``iss``)."""
    started = client.authorize(**params)
    assert started.status_code == 302, started.body
    return consent(client.api, token, str(header(started, "Location")))


def sign_in(client: Client, token: str, **params: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The whole flow as the user ``token`` belongs to: the token answer and the query
    the client received."""
    back = allowed(client, token, **params)
    exchanged = client.exchange(back["code"])
    assert exchanged.status_code == 200, exchanged.body
    return exchanged.json_body, back


Factory = Callable[..., Client]
