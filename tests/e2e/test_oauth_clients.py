"""Gatehouse's OpenID Provider with two independent, well-known relying-party libraries,
on the real local runner: authlib's requests client (Python) and panva's openid-client
(Node, the OpenID Certified RP library, driven through ``tests/e2e/oidc/rp.mjs``).

Each library makes its own requests and its own checks (discovery's issuer, state,
``iss``, PKCE, the ID token's signature and claims, userinfo's ``sub``); the test is
the operator who registers the client (``scripts.admin``), the user who signs in
(``POST /login``) and the web page that asks for consent. A provider that only passed
its own hand-written client would pass here only if it speaks the protocol as the
libraries' authors read it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from authlib.oidc import discovery, rpinitiated
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from scripts.dynamodb_local import DynamoDBLocal, free_port
from tests.conftest import PROJECT_DIR
from tests.e2e.runner import Runner, serve

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
#: Loopback http redirect URIs: allowed for any client (RFC 8252 7.3), and nothing needs
#: to listen there, since the test hands the callback URL to the library itself.
REDIRECT_URI = "http://127.0.0.1:9/callback"
AFTER_LOGOUT = "http://127.0.0.1:9/signed-out"
SCOPE = "openid profile email offline_access"
TIMEOUT = 10
RP_DIR = PROJECT_DIR / "tests" / "e2e" / "oidc"
#: Seconds one openid-client command may take (its requests included).
RP_SECONDS = 20


# ------------------------------------------------------------------ the provider and its people


@pytest.fixture(scope="module")
def provider(dynamodb: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """A runner whose ``ISSUER`` is the very URL the libraries call: discovery's
    ``issuer``, every token's ``iss`` and the address must be one string, or the
    libraries refuse (as they should)."""
    port = free_port()
    directory = tmp_path_factory.mktemp("oauth-runner")
    with serve(dynamodb, directory, PORT=str(port), ISSUER=f"http://127.0.0.1:{port}") as started:
        yield started


@pytest.fixture(scope="module")
def metadata(provider: Runner) -> dict[str, Any]:
    answer = requests.get(f"{provider.url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


@dataclass(frozen=True)
class User:
    """A signed-in user of Gatehouse: the first-party bearer token plays the browser's
    sign-in on the consent page."""

    id: str
    username: str
    email: str
    bearer: str


@pytest.fixture
def user(provider: Runner) -> User:
    username = f"rp{os.urandom(5).hex()}"
    email = f"{username}@example.com"
    body = {"username": username, "password": PASSWORD, "email": email}
    created = requests.post(f"{provider.url}/register", json=body, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    login = {"username": username, "password": PASSWORD}
    logged_in = requests.post(f"{provider.url}/login", json=login, timeout=TIMEOUT)
    assert logged_in.status_code == 200, logged_in.text
    return User(created.json()["user"]["id"], username, email, logged_in.json()["access_token"])


@dataclass(frozen=True)
class Registered:
    name: str
    client_id: str
    #: None for a public client.
    client_secret: str | None


def register_client(runner: Runner, name: str, *extra: str) -> Registered:
    """``python -m scripts.admin clients create``, as an operator registers a client,
    against the runner's table (the runner's own environment)."""
    command = [sys.executable, "-m", "scripts.admin", "--stage", "local", "clients", "create"]
    command += ["--name", name, "--redirect-uri", REDIRECT_URI, *extra]
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments, no shell
        command,
        cwd=PROJECT_DIR,
        env=runner.environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["redirect_uris"] == [REDIRECT_URI]
    return Registered(name, shown["client_id"], shown.get("client_secret"))


def consent(issuer: str, user: User, authorization_url: str, client: Registered) -> str:
    """The browser and the web page: follow the authorization URL to the page, read the
    request, allow it; the URL the relying party's callback then receives."""
    started = requests.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert started.status_code == 302, started.text
    page = urlsplit(started.headers["Location"])
    assert f"{page.scheme}://{page.netloc}" == issuer  # the web page, on the issuer's origin
    request_id = parse_qs(page.query)["request_id"][0]
    url = f"{issuer}/oauth2/requests/{request_id}"
    bearer = {"Authorization": f"Bearer {user.bearer}"}
    described = requests.get(url, headers=bearer, timeout=TIMEOUT)
    assert described.status_code == 200, described.text
    assert described.json()["client"] == {"client_id": client.client_id, "name": client.name}
    assert described.json()["scopes"] == SCOPE.split()
    decided = requests.post(url, json={"decision": "allow"}, headers=bearer, timeout=TIMEOUT)
    assert decided.status_code == 200, decided.text
    redirect_to: str = decided.json()["redirect_to"]
    assert redirect_to.startswith(REDIRECT_URI + "?")
    return redirect_to


def with_query(url: str, **replaced: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **replaced})))


def userinfo_status(metadata: dict[str, Any], access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(metadata["userinfo_endpoint"], headers=headers, timeout=TIMEOUT).status_code


# ------------------------------------------------------------------ authlib


def authlib_session(client: Registered) -> Any:
    """authlib's requests client with PKCE S256 and client_secret_basic."""
    return OAuth2Session(
        client.client_id,
        client.client_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


def verified_id_token(
    id_token: str, metadata: dict[str, Any], client_id: str, nonce: str, access_token: str
) -> CodeIDToken:
    """The ID token checked with authlib's tools: the signature against the JWKS that
    discovery names (RS256 only, never the token's own choice), then authlib's
    ``CodeIDToken`` rules: iss, aud, exp, iat, nonce, azp and at_hash."""
    jwks = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    assert jwks.status_code == 200, jwks.text
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks.json()), algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "nonce": {"essential": True, "value": nonce},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate()
    return claims


def test_authlib_validates_the_discovery_document(metadata: dict[str, Any]) -> None:
    """authlib's OpenID Provider metadata rules, RP-Initiated Logout's included. authlib
    takes http on a loopback address as secure transport (RFC 8252 7.3), so the runner's
    http://127.0.0.1 issuer is validated as it is, no scheme swapped."""
    document = discovery.OpenIDProviderMetadata(metadata)
    document.validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    assert document["issuer"] == metadata["issuer"]
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_authlib_signs_in_with_pkce_then_reads_userinfo_refreshes_and_revokes(
    provider: Runner, metadata: dict[str, Any], user: User
) -> None:
    client = register_client(provider, "Wiki (authlib)")
    session = authlib_session(client)
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"]
    assert verifier not in url

    callback = consent(metadata["issuer"], user, url, client)
    back = parse_qs(urlsplit(callback).query)
    assert back["state"] == [state]
    assert back["iss"] == [metadata["issuer"]]  # RFC 9207 (authlib does not check it)

    # The state is the app's to keep between redirect and callback, as with any web
    # session; given it, authlib compares it with the callback's.
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == set(SCOPE.split())
    claims = verified_id_token(
        token["id_token"], metadata, client.client_id, nonce, token["access_token"]
    )
    assert "at_hash" in claims  # so the at_hash check above did run
    assert claims["sub"] == user.id
    assert claims["email"] == user.email
    assert claims["preferred_username"] == user.username

    info = session.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["email"] == user.email

    refreshed = session.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotated
    assert refreshed["access_token"] != token["access_token"]
    assert userinfo_status(metadata, refreshed["access_token"]) == 200

    active = session.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    )
    assert active.status_code == 200, active.text
    assert active.json()["active"] is True
    assert active.json()["client_id"] == client.client_id

    revoked = session.revoke_token(
        metadata["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200, revoked.text
    # Revoking the refresh token ends the session: its access token dies with it.
    assert userinfo_status(metadata, refreshed["access_token"]) == 401
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(metadata["token_endpoint"])
    assert refused.value.error == "invalid_grant"


def test_authlib_refuses_a_forged_state_and_a_reused_code_is_invalid_grant(
    provider: Runner, metadata: dict[str, Any], user: User
) -> None:
    client = register_client(provider, "Forum (authlib)")
    session = authlib_session(client)
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(20)
    )
    callback = consent(metadata["issuer"], user, url, client)

    def exchange(authorization_response: str) -> Any:
        return session.fetch_token(
            metadata["token_endpoint"],
            authorization_response=authorization_response,
            state=state,
            code_verifier=verifier,
        )

    # authlib checks the state itself, before the code reaches the provider.
    with pytest.raises(MismatchingStateException):
        exchange(with_query(callback, state="forged"))

    first = exchange(callback)
    assert userinfo_status(metadata, first["access_token"]) == 200

    with pytest.raises(OAuthError) as reused:
        exchange(callback)
    assert reused.value.error == "invalid_grant"
    # The reuse revoked what the first exchange issued (RFC 6749 4.1.2).
    assert userinfo_status(metadata, first["access_token"]) == 401


# ------------------------------------------------------------------ openid-client (Node)


class RelyingPartyError(Exception):
    """openid-client raised: ``described`` is its class name, code, OAuth error and status."""

    def __init__(self, described: dict[str, Any]) -> None:
        super().__init__(json.dumps(described))
        self.described = described


class OpenIDClient:
    """``rp.mjs`` as a Python object: one JSON line to it, one back, per command."""

    def __init__(self, process: subprocess.Popen[str], errors: Path) -> None:
        self.process = process
        self.errors = errors

    def call(self, op: str, **args: Any) -> Any:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"op": op, **args}) + "\n")
        stdin.flush()
        line = self._line(stdout)
        answer = json.loads(line)
        if "error" in answer:
            raise RelyingPartyError(answer["error"])
        return answer["ok"]

    def _line(self, stdout: IO[str]) -> str:
        """The next answer. Commands alternate with answers, so nothing is ever buffered
        ahead of a line and ``select`` on the pipe bounds the wait."""
        ready, _, _ = select.select([stdout], [], [], RP_SECONDS)
        line = stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            stderr = self.errors.read_text("utf-8", errors="replace")[-4000:]
            pytest.fail(f"openid-client gave no answer in {RP_SECONDS}s:\n{stderr}")
        return line


@pytest.fixture
def openid_client(tmp_path: Path) -> Iterator[Callable[[Registered, str], OpenIDClient]]:
    """Start ``rp.mjs`` and run openid-client's discovery for a registered client."""
    node = shutil.which("node")
    if node is None or not (RP_DIR / "node_modules" / "openid-client").is_dir():
        pytest.fail("openid-client is not installed: run `make install`")
    started: list[subprocess.Popen[str]] = []

    def start(client: Registered, issuer: str) -> OpenIDClient:
        errors = tmp_path / f"rp-{len(started)}.stderr"
        with errors.open("w") as sink:
            process = subprocess.Popen(  # noqa: S603 - node on our own script, no shell
                [node, str(RP_DIR / "rp.mjs")],
                cwd=RP_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
            )
        started.append(process)
        rp = OpenIDClient(process, errors)
        secret = client.client_secret
        rp.call("discover", issuer=issuer, client_id=client.client_id, client_secret=secret)
        return rp

    yield start
    for process in started:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


Start = Callable[[Registered, str], OpenIDClient]


def signed_in(rp: OpenIDClient, client: Registered, issuer: str, user: User) -> dict[str, Any]:
    """openid-client's authorization URL, the user's consent, and its code grant."""
    request = rp.call("authorize", redirect_uri=REDIRECT_URI, scope=SCOPE)
    sent = parse_qs(urlsplit(request["url"]).query)
    assert sent["code_challenge_method"] == ["S256"]
    assert sent["state"] == [request["state"]]
    assert sent["nonce"] == [request["nonce"]]
    callback = consent(issuer, user, request["url"], client)
    tokens: dict[str, Any] = rp.call("callback", url=callback)
    assert tokens["claims"]["nonce"] == request["nonce"]
    return tokens


def test_openid_client_signs_in_refreshes_introspects_and_logs_out(
    provider: Runner, metadata: dict[str, Any], user: User, openid_client: Start
) -> None:
    issuer = metadata["issuer"]
    client = register_client(
        provider, "Shop (openid-client)", "--post-logout-redirect-uri", AFTER_LOGOUT
    )
    rp = openid_client(client, issuer)
    tokens = signed_in(rp, client, issuer, user)
    claims = tokens["claims"]  # validated by openid-client: signature, iss, aud, nonce, exp
    assert claims["sub"] == user.id
    assert claims["aud"] == client.client_id
    assert claims["email"] == user.email

    info = rp.call("userinfo", access_token=tokens["access_token"], sub=claims["sub"])
    assert info["email"] == user.email
    assert info["preferred_username"] == user.username

    refreshed = rp.call("refresh", refresh_token=tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    access = refreshed["access_token"]
    described = rp.call("introspect", token=access)
    assert described["active"] is True
    assert described["sub"] == user.id
    assert described["client_id"] == client.client_id
    assert described["iss"] == issuer

    logout = rp.call(
        "end_session",
        id_token=tokens["id_token"],
        post_logout_redirect_uri=AFTER_LOGOUT,
        state="bye-1",
    )
    assert logout["url"].startswith(metadata["end_session_endpoint"] + "?")
    ended = requests.get(logout["url"], allow_redirects=False, timeout=TIMEOUT)
    assert ended.status_code == 302, ended.text
    assert ended.headers["Location"] == f"{AFTER_LOGOUT}?state=bye-1"

    # The session the ID token named is over: every token of it is dead.
    assert rp.call("introspect", token=access) == {"active": False}
    with pytest.raises(RelyingPartyError) as refused:
        rp.call("userinfo", access_token=access, sub=user.id)
    assert refused.value.described["name"] == "WWWAuthenticateChallengeError"
    assert refused.value.described["status"] == 401
    with pytest.raises(RelyingPartyError) as spent:
        rp.call("refresh", refresh_token=refreshed["refresh_token"])
    assert spent.value.described["error"] == "invalid_grant"


def test_openid_client_revokes_a_token_and_the_session_ends(
    provider: Runner, metadata: dict[str, Any], user: User, openid_client: Start
) -> None:
    issuer = metadata["issuer"]
    client = register_client(provider, "Docs (openid-client)")
    rp = openid_client(client, issuer)
    tokens = signed_in(rp, client, issuer, user)
    assert rp.call("introspect", token=tokens["refresh_token"])["active"] is True

    rp.call("revoke", token=tokens["access_token"])

    assert rp.call("introspect", token=tokens["access_token"]) == {"active": False}
    assert rp.call("introspect", token=tokens["refresh_token"]) == {"active": False}
    with pytest.raises(RelyingPartyError) as refused:
        rp.call("userinfo", access_token=tokens["access_token"], sub=user.id)
    assert refused.value.described["status"] == 401


def test_openid_client_refuses_a_callback_with_another_state(
    provider: Runner, metadata: dict[str, Any], user: User, openid_client: Start
) -> None:
    issuer = metadata["issuer"]
    client = register_client(provider, "Mail (openid-client)")
    rp = openid_client(client, issuer)
    request = rp.call("authorize", redirect_uri=REDIRECT_URI, scope=SCOPE)
    callback = consent(issuer, user, request["url"], client)

    with pytest.raises(RelyingPartyError) as refused:
        rp.call("callback", url=with_query(callback, state="forged"))
    assert refused.value.described["code"] == "OAUTH_INVALID_RESPONSE"
    assert refused.value.described["cause"] == 'unexpected "state" response parameter value'

    # The library refused before spending the code: the genuine callback still works.
    tokens = rp.call("callback", url=callback)
    assert tokens["claims"]["sub"] == user.id


def test_openid_client_as_a_public_client_with_pkce_alone(
    provider: Runner, metadata: dict[str, Any], user: User, openid_client: Start
) -> None:
    """A public client (token endpoint auth ``none``) sending neither state nor nonce,
    the flow openid-client documents first: PKCE alone protects the code, and the
    library then insists that no state comes back and no nonce is in the ID token."""
    issuer = metadata["issuer"]
    client = register_client(provider, "App (openid-client, public)", "--public")
    assert client.client_secret is None
    rp = openid_client(client, issuer)
    request = rp.call("authorize", redirect_uri=REDIRECT_URI, scope=SCOPE, state=False, nonce=False)
    sent = parse_qs(urlsplit(request["url"]).query)
    assert "state" not in sent
    assert "nonce" not in sent

    tokens = rp.call("callback", url=consent(issuer, user, request["url"], client))
    assert tokens["claims"]["sub"] == user.id
    assert "nonce" not in tokens["claims"]

    refreshed = rp.call("refresh", refresh_token=tokens["refresh_token"])
    info = rp.call("userinfo", access_token=refreshed["access_token"], sub=user.id)
    assert info["email"] == user.email
