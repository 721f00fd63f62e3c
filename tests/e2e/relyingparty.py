"""What the OAuth browser tests share: relying parties registered as an operator does
(``python -m scripts.admin clients create``, run with the runner's own environment, so
it writes to the table the runner reads), and a relying party's own requests (the
authorization URL with PKCE, the token exchange, userinfo) as plain HTTP.

The admin command line is what the docs tell an operator to run, so these tests also
prove those instructions; it costs about a second per client, so each module registers
its clients once.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.conftest import PROJECT_DIR
from tests.e2e.runner import Runner

ADMIN_SECONDS = 60


@dataclass(frozen=True)
class Registered:
    """A client as ``clients create`` printed it."""

    client_id: str
    secret: str | None
    name: str
    redirect_uris: tuple[str, ...]


def register_client(
    runner: Runner,
    name: str,
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...] = (),
) -> Registered:
    """``python -m scripts.admin --stage local clients create ...`` on the runner's table."""
    argv = [sys.executable, "-m", "scripts.admin", "--stage", "local", "clients", "create"]
    argv += ["--name", name]
    for uri in redirect_uris:
        argv += ["--redirect-uri", uri]
    for uri in post_logout_redirect_uris:
        argv += ["--post-logout-redirect-uri", uri]
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        argv,
        cwd=PROJECT_DIR,
        env=runner.environment,
        capture_output=True,
        text=True,
        timeout=ADMIN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    return Registered(
        shown["client_id"], shown.get("client_secret"), shown["name"], tuple(shown["redirect_uris"])
    )


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class Authorization:
    """One authorization request a relying party sends the browser with."""

    client: Registered
    issuer: str
    scope: str = "openid profile email offline_access"
    extra: dict[str, str] = field(default_factory=dict)
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def redirect_uri(self) -> str:
        return self.client.redirect_uris[0]

    @property
    def url(self) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
            **self.extra,
        }
        return f"{self.issuer}/oauth2/authorize?{urlencode(query)}"


class Backchannel:
    """The relying party's server-to-server calls to the runner."""

    def __init__(self, runner: Runner) -> None:
        self.port = runner.port

    def _call(
        self, method: str, path: str, body: str | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def exchange(self, authorization: Authorization, code: str) -> tuple[int, Any]:
        """The code for tokens, with the secret (client_secret_basic) and the verifier."""
        client = authorization.client
        credentials = f"{client.client_id}:{client.secret}".encode()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": authorization.redirect_uri,
            "code_verifier": authorization.verifier,
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
        }
        return self._call("POST", "/oauth2/token", urlencode(form), headers)

    def userinfo(self, access_token: str) -> tuple[int, Any]:
        return self._call(
            "GET", "/oauth2/userinfo", None, {"Authorization": f"Bearer {access_token}"}
        )
