"""The OpenID Provider's protocol, on authlib's server side (RFC 6749, 7636, OIDC Core).

authlib validates what peers got wrong for years: the client and its exact redirect URI,
``response_type``, scopes, repeated parameters, ``prompt``, client authentication at
the token endpoint (``client_secret_basic``, ``client_secret_post``, ``none``), the
code's binding to its client and redirect URI, and the PKCE verifier. Gatehouse holds
the records (oauth/clients.py, store/grants.py), the sessions (accounts/sessions.py) and
the tokens (oauth/tokens.py), and adds what the contract asks beyond authlib's defaults:
S256 PKCE for every client, ``iss`` on every authorization response (RFC 9207), a code
that lives 60 seconds and whose reuse ends the session it opened, and a decision made
by the signed-in user through the web page (``describe`` / ``decide``).

This module imports authlib (about 85 ms); ``wiring.Services.oauth`` imports it on the
first OAuth request, never on the authorizer's or the first-party routes' path.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749 import errors as oauth_errors
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode

from chalicelib.accounts.sessions import ClientGrant, Device, Sessions
from chalicelib.accounts.users import Accounts
from chalicelib.crypto.tokens import RefreshToken, new_id
from chalicelib.oauth.browser import BrowserSignIn
from chalicelib.oauth.clients import AUTHORIZATION_CODE, REFRESH_TOKEN, Clients
from chalicelib.oauth.discovery import CLIENT_AUTH_METHODS, SCOPES
from chalicelib.oauth.messages import HttpAnswer, HttpRequest, json_answer, oauth_error
from chalicelib.oauth.tokens import ClientAccess, ClientTokens
from chalicelib.platform import errors, observability
from chalicelib.store.items import (
    AuthorizationCode,
    AuthorizationRequest,
    ClientRecord,
    ConsentRecord,
    SessionRecord,
)
from chalicelib.store.table import Store

#: How long a code may wait for its exchange (the contract: at most 60 seconds).
CODE_SECONDS = 60
#: How long an authorization request may wait for the user's decision.
REQUEST_SECONDS = 600
BEARER = "Bearer"
#: Request parameters refused by name (OIDC Core 6: request objects are not supported).
_UNSUPPORTED = (("request", "request_not_supported"), ("request_uri", "request_uri_not_supported"))


_log = logging.getLogger("gatehouse")
NOT_VISIBLE = "The request holds characters OAuth does not allow."


def _visible(request: _Request) -> bool:
    """Every parameter name and value is printable ASCII (RFC 6749 Appendix A's VSCHAR
    and the space). authlib echoes some values into error descriptions and raises on
    anything else, and no valid request needs more."""
    return all(
        text.isascii() and text.isprintable()
        for name, values in request.payload.datalist.items()
        for text in (name, *values)
    )


def _remembered(pending: AuthorizationRequest, consent: ConsentRecord | None) -> bool:
    """Whether the user allowed these scopes to this client before, and the request does
    not ask to be asked again (``prompt=consent`` or ``select_account``)."""
    if consent is None or set(pending.prompt.split()) & {"consent", "select_account"}:
        return False
    return set(pending.scope.split()) <= set(consent.scope.split())


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class _Client(ClientMixin):  # type: ignore[misc]
    """A ``ClientRecord`` as authlib asks about it."""

    def __init__(self, record: ClientRecord, clients: Clients) -> None:
        self.record = record
        self._clients = clients
        self._redirects = record.redirect_uris.split()
        self._grants = record.grant_types.split()

    def get_client_id(self) -> str:
        return self.record.id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: with two registered, the request must name one.
        return self._redirects[0] if len(self._redirects) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = [s for s in (scope or "").split() if s in SCOPES]
        if REFRESH_TOKEN not in self._grants:
            allowed = [s for s in allowed if s != "offline_access"]
        return " ".join(dict.fromkeys(allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self._redirects  # exact, character for character

    def check_client_secret(self, client_secret: str) -> bool:
        return self._clients.secret_matches(self.record, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.record.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self._grants

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self._grants


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, found in values.items():
            self._datalist[name].extend(found)
        self._data = {name: found[0] for name, found in self._datalist.items() if found}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.url, headers=http.headers)
        self.http = http
        self.payload = _Payload({**http.query, **http.form})
        self._form = {name: found[0] for name, found in http.form.items() if found}
        self._args = {name: found[0] for name, found in http.query.items() if found}

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    """A claimed ``AuthorizationCode`` as authlib's grant reads it."""

    def __init__(self, record: AuthorizationCode, code_hash: str) -> None:
        self.record = record
        self.code_hash = code_hash
        self.code_challenge = record.code_challenge
        self.code_challenge_method = "S256"

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope

    def get_nonce(self) -> str | None:
        return self.record.nonce or None

    def get_auth_time(self) -> int:
        return self.record.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 for every client (RFC 9700 2.1.1): a missing challenge or
    ``plain`` is ``invalid_request`` at the authorization endpoint."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise oauth_errors.InvalidRequestError("'code_challenge' (PKCE, S256) is required.")
        if data.get("code_challenge_method") != "S256":
            raise oauth_errors.InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class _Server(AuthorizationServer):  # type: ignore[misc]
    """authlib's server, reading clients and answering through the ``Provider``."""

    def __init__(self, provider: Provider, scopes_supported: list[str]) -> None:
        super().__init__(scopes_supported=scopes_supported)
        self.provider = provider

    def query_client(self, client_id: str) -> _Client | None:
        clients = self.provider.clients
        record = clients.get(client_id)
        return _Client(record, clients) if record else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to save: the session item holds the token's state."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Any:
        return _answer(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: events and metrics are recorded by the provider."""


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The code grant on our records: a code is claimed (spent) when it is read."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    @property
    def provider(self) -> Provider:
        server: _Server = self.server
        return server.provider

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        return self.provider.claim_code(code, client.record)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Spent when claimed (``query_authorization_code``), not after."""

    def authenticate_user(self, authorization_code: _Code) -> _Code:
        return authorization_code

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        raise NotImplementedError("codes are made by Provider.decide")

    def generate_token(
        self,
        user: _Code | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if user is None:
            raise oauth_errors.InvalidGrantError("There is no user for this code.")
        request: _Request = self.request
        return self.provider.code_tokens(user, request.client, request.http.device)


class _Refresh:
    """A live OAuth refresh token, as authlib's refresh grant asks about it."""

    def __init__(self, session: SessionRecord, token: RefreshToken) -> None:
        self.session = session
        self.token = token

    def check_client(self, client: _Client) -> bool:
        return self.session.client_id == client.record.id

    def get_scope(self) -> str:
        return self.session.scope

    def is_expired(self) -> bool:
        return False  # live_refresh read it live

    def is_revoked(self) -> bool:
        return False


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """RFC 6749 6 with rotation and reuse detection (accounts/sessions.py): the token is
    bound to its client, a narrower ``scope`` narrows the new access token only, and a
    spent token (or the loser of two racing refreshes) ends its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        server: _Server = self.server
        request: _Request = self.request
        try:
            session, token = server.provider.sessions.live_refresh(
                refresh_token, request.http.device
            )
        except errors.InvalidToken:
            return None
        return _Refresh(session, token)

    def authenticate_user(self, refresh_token: _Refresh) -> SessionRecord:
        return refresh_token.session

    def issue_token(self, user: SessionRecord, refresh_token: _Refresh) -> dict[str, Any]:
        server: _Server = self.server
        request: _Request = self.request
        scope = request.payload.scope or user.scope
        return server.provider.refreshed_tokens(refresh_token, scope, request.http.device)

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        """Spent by the rotation in ``issue_token``."""


class _MachineGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """client_credentials for a confidential client registered with it: an access token
    whose ``sub`` and ``client_id`` are the client; no user scope, no ID or refresh
    token, and no session (it lives its 15 minutes, introspected as long as the client
    exists)."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        if self.request.payload.scope:
            raise oauth_errors.InvalidScopeError("client_credentials grants no user scope.")

    def generate_token(
        self,
        user: Any = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        server: _Server = self.server
        client: _Client = self.request.client
        tokens = server.provider.tokens
        access = tokens.access_token(
            user_id=client.record.id, client_id=client.record.id, scope="", session_id=""
        )
        return {"access_token": access, "token_type": BEARER, "expires_in": tokens.lifetime}


class _Held:
    """A token a client presents to revocation or introspection, as we found it: what
    kind, whose, and the session that keeps it alive (None: ended, or none)."""

    def __init__(
        self,
        kind: str,
        client_id: str,
        session: SessionRecord | None,
        access: ClientAccess | None = None,
        alive: bool = True,
    ) -> None:
        self.kind = kind
        self.client_id = client_id
        self.session = session
        self.access = access
        self.alive = alive

    def check_client(self, client: _Client) -> bool:
        return self.client_id == client.record.id

    def is_expired(self) -> bool:
        return not self.alive

    def is_revoked(self) -> bool:
        return not self.alive


class _TokenLookup:
    """Finds a presented token (refresh or access) for both endpoints."""

    provider: Provider

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Held | None:
        return self.provider.held_token(token_string)


class _Revocation(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: revoking either token of a session ends the session (both die)."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def revoke_token(self, token: _Held, request: OAuth2Request) -> None:
        if token.session is not None:
            self.provider.end_client_session(token.session)


class _Introspection(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 for the client a token was issued to, and for any confidential client
    (a resource server registered as one); a public client sees only its own."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Held | None:
        """As for revocation, and a token of a deleted client is inactive at once."""
        held = self.provider.held_token(token_string)
        if held is not None and held.alive and self.provider.clients.get(held.client_id) is None:
            held.alive = False
        return held

    def check_permission(self, token: _Held, client: _Client, request: OAuth2Request) -> bool:
        return token.check_client(client) or not client.record.public

    def introspect_token(self, token: _Held) -> dict[str, Any]:
        return self.provider.introspection(token)


class _OpenID(OpenIDCode):  # type: ignore[misc]
    """OIDC on the code grant; the ID token is signed by ``ClientTokens``."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a code is single use: its nonce cannot come back

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        code: _Code = request.authorization_code
        return self.provider.tokens.id_token(code.record, token["access_token"])


def _answer(status: int, body: Any, headers: list[tuple[str, str]]) -> HttpAnswer:
    answer = dict(headers)
    if isinstance(body, dict):
        if body.get("error") == "invalid_client":
            # RFC 6749 5.2: 401 with the scheme a client may authenticate with (and our
            # words: authlib's lists the methods as Python text).
            status = 401
            body = {**body, "error_description": "Client authentication failed."}
            answer["WWW-Authenticate"] = 'Basic realm="gatehouse"'
        return json_answer(status, body, answer)
    return HttpAnswer(status, answer, str(body or ""))


class Provider:
    """The authorization server: the authorization endpoint, the user's decision, the
    token endpoint and userinfo."""

    def __init__(
        self,
        store: Store,
        *,
        browser: BrowserSignIn,
        clients: Clients,
        accounts: Accounts,
        sessions: Sessions,
        tokens: ClientTokens,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self.browser = browser
        self.clients = clients
        self._accounts = accounts
        self.sessions = sessions
        self.tokens = tokens
        self._clock = clock
        self.issuer = tokens.issuer
        self._server = self._build_server()

    # ------------------------------------------------------------ authlib's server

    def _build_server(self) -> _Server:
        server = _Server(self, scopes_supported=list(SCOPES))
        server.register_grant(_CodeGrant, [_S256Only(required=True), _OpenID(self)])
        server.register_grant(_RefreshGrant)
        server.register_grant(_MachineGrant)
        server.register_endpoint(_Revocation(self))
        server.register_endpoint(_Introspection(self))
        return server

    def code_tokens(self, claimed: _Code, client: _Client, device: Device) -> dict[str, Any]:
        """Open the code's session and answer its tokens (the ID token is added by
        authlib's OpenID extension, through ``ClientTokens.id_token``)."""
        code = claimed.record
        grant = ClientGrant(
            user_id=code.user_id,
            username=code.username,
            client_id=client.record.id,
            scope=code.scope,
            auth_time=code.auth_time,
            session_id=code.session_id,
            code_hash=claimed.code_hash,
        )
        try:
            session, refresh = self.sessions.start_for_client(grant, device)
        except errors.InvalidToken:
            raise oauth_errors.InvalidGrantError("The account cannot sign in.") from None
        token = self._bearer(session, code.scope)
        if "offline_access" in code.scope.split() and client.check_grant_type(REFRESH_TOKEN):
            token["refresh_token"] = str(refresh)
        return token

    def _bearer(self, session: SessionRecord, scope: str) -> dict[str, Any]:
        """The RFC 6749 5.1 answer's access token part, for ``session`` and ``scope``."""
        return {
            "access_token": self.tokens.access_token(
                user_id=session.user_id,
                client_id=session.client_id,
                scope=scope,
                session_id=session.id,
            ),
            "token_type": BEARER,
            "expires_in": self.tokens.lifetime,
            "scope": scope,
        }

    def refreshed_tokens(self, credential: _Refresh, scope: str, device: Device) -> dict[str, Any]:
        """Rotate the refresh token and answer the next access token (of ``scope``, at most
        the granted one) and refresh token."""
        try:
            session, following = self.sessions.rotate(credential.session, credential.token, device)
        except errors.InvalidToken:
            raise oauth_errors.InvalidGrantError("The refresh token was already used.") from None
        return {**self._bearer(session, scope), "refresh_token": str(following)}

    # ------------------------------------------------------------ revocation, introspection

    def held_token(self, presented: str) -> _Held | None:
        """The token as revocation and introspection see it; None if it is not one of
        ours at all (a forgery, another issuer's, garbage)."""
        if presented.count(".") == 2 and len(presented) <= 256:
            try:
                token = RefreshToken.parse(presented)
            except errors.InvalidToken:
                return None
            session = self._store.get_session(token.user_id, token.session_id)
            if session is None or not session.client_id:
                return None
            alive = session.expires_at > int(self._clock()) and hmac.compare_digest(
                session.refresh_hash, token.digest
            )
            return _Held(REFRESH_TOKEN, session.client_id, session if alive else None, None, alive)
        try:
            access = self.tokens.verify_access_token(presented)
        except errors.InvalidToken:
            return None
        if not access.session_id:  # client_credentials: alive while the client exists
            alive = self.clients.get(access.client_id) is not None
            return _Held("access_token", access.client_id, None, access, alive)
        session = self._store.get_session(access.user_id, access.session_id)
        alive = session is not None and session.expires_at > int(self._clock())
        return _Held("access_token", access.client_id, session if alive else None, access, alive)

    def introspection(self, token: _Held) -> dict[str, Any]:
        """RFC 7662 2.2 for a live token (``active`` is added by authlib)."""
        if token.access is not None:
            access = token.access
            return {
                "sub": access.user_id,
                "client_id": access.client_id,
                "scope": access.scope,
                "exp": access.expires_at,
                "iat": access.issued_at,
                "iss": self.issuer,
                "token_type": BEARER,
            }
        session = token.session
        if session is None:  # a live refresh token always has its session
            return {"active": False}
        return {
            "sub": session.user_id,
            "client_id": session.client_id,
            "scope": session.scope,
            "exp": session.expires_at,
            "iat": session.last_used_at,
            "iss": self.issuer,
            "token_type": REFRESH_TOKEN,
        }

    def end_client_session(self, session: SessionRecord) -> None:
        self._store.delete_session(session.user_id, session.id)

    def revoke(self, http: HttpRequest) -> HttpAnswer:
        return self._endpoint("revocation", http)

    def introspect(self, http: HttpRequest) -> HttpAnswer:
        return self._endpoint("introspection", http)

    def _endpoint(self, name: str, http: HttpRequest) -> HttpAnswer:
        request = _Request(http)
        if not _visible(request):
            return oauth_error("invalid_request", NOT_VISIBLE)
        answer: HttpAnswer = self._server.create_endpoint_response(name, request)
        return answer

    # ------------------------------------------------------------ RP-initiated logout

    def logout(self, http: HttpRequest) -> HttpAnswer:
        """OpenID Connect RP-Initiated Logout 1.0: end the session the ID token names,
        then 302 to a registered ``post_logout_redirect_uri`` (with ``state``) or show
        the signed-out page. A bad hint or an unregistered URI is a page, never a
        redirect."""
        request = _Request(http)
        if not _visible(request):
            return self._error_page(NOT_VISIBLE)
        data = request.payload.data
        hint = data.get("id_token_hint", "")
        claims = self.tokens.id_token_hint(hint) if hint else None
        if hint and claims is None:
            return self._error_page("The id_token_hint is not an ID token this issuer signed.")
        client_id = data.get("client_id") or (claims or {}).get("aud", "")
        if claims is not None and claims.get("aud") != client_id:
            return self._error_page("The id_token_hint was issued to another client.")
        redirect = data.get("post_logout_redirect_uri", "")
        client = self.clients.get(str(client_id)) if client_id else None
        if redirect and (
            client is None or redirect not in client.post_logout_redirect_uris.split()
        ):
            return self._error_page("post_logout_redirect_uri is not registered for this client.")
        if claims is not None and claims.get("sid"):
            self._store.delete_session(str(claims["sub"]), str(claims["sid"]))
        # The user's session at Gatehouse (the browser's sign-in) ends too, unless the
        # hint names someone else: after this, prompt=none is login_required.
        browser = self.browser.session(http.signin)
        if browser is not None and (claims is None or claims["sub"] == browser.user_id):
            self._store.delete_session(browser.user_id, browser.id)
        if redirect:
            params = [("state", data["state"])] if data.get("state") else []
            location = add_params_to_uri(redirect, params) if params else redirect
            headers = {"Location": location, "Cache-Control": "no-store"}
            return HttpAnswer(302, headers, signed_out=True)
        return replace(self._signed_out_page(), signed_out=True)

    @staticmethod
    def _signed_out_page() -> HttpAnswer:
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Signed out</title>"
            "<h1>You are signed out</h1><p>You can close this window.</p></html>"
        )
        headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        return HttpAnswer(200, headers, body)

    # ------------------------------------------------------------ the authorization endpoint

    def authorize(self, http: HttpRequest) -> HttpAnswer:
        """Validate an authorization request and send the browser to the web page with a
        ``request_id`` (or back to the client with a code or an error, or to an error
        page when the client or redirect URI cannot be trusted with one)."""
        request = _Request(http)
        signed_in = self.browser.session(http.signin)
        pending = self._validated(request, signed_in)
        if isinstance(pending, HttpAnswer):
            return pending
        hint = request.payload.data.get("id_token_hint", "")
        at_once = self._without_page(pending, signed_in, hint, http)
        if at_once is not None:
            return at_once
        request_id = secrets.token_urlsafe(32)
        self._store.put_authorization_request(_hash(request_id), pending)
        return self._redirect(f"{self.issuer}/?{urlencode({'request_id': request_id})}")

    def _validated(
        self, request: _Request, signed_in: SessionRecord | None
    ) -> AuthorizationRequest | HttpAnswer:
        """The request as authlib validated it, or the answer that refuses it."""
        data = request.payload.data
        state = data.get("state", "")
        if not _visible(request):
            return self._error_page(NOT_VISIBLE)
        if "openid" in (data.get("scope") or "").split() and not data.get("redirect_uri"):
            return self._error_page("redirect_uri is required (OpenID Connect Core 3.1.2.1).")
        try:
            grant = self._server.get_consent_grant(request, end_user=signed_in)
        except oauth_errors.OAuth2Error as error:
            if not error.redirect_uri:
                return self._error_page(error.get_error_description() or error.error)
            failed = {"error": error.error, **self._description(error)}
            return self._redirect(self._back_to_client(error.redirect_uri, failed, state))
        for name, code in _UNSUPPORTED:
            if name in data:
                refused = {"error": code, "error_description": f"'{name}' is not supported."}
                return self._redirect(self._back_to_client(grant.redirect_uri, refused, state))
        max_age = data.get("max_age", "")
        return AuthorizationRequest(
            client_id=grant.client.record.id,
            redirect_uri=grant.redirect_uri,
            scope=request.scope or "",
            state=state,
            nonce=data.get("nonce", ""),
            code_challenge=data["code_challenge"],
            prompt=data.get("prompt", ""),
            max_age=int(max_age) if max_age.isdecimal() and len(max_age) < 10 else -1,
            expires_at=int(self._clock()) + REQUEST_SECONDS,
        )

    def _without_page(
        self,
        pending: AuthorizationRequest,
        signed_in: SessionRecord | None,
        hint: str,
        http: HttpRequest,
    ) -> HttpAnswer | None:
        """The answer when the browser's sign-in settles the request without the page:
        a code at once (signed in, as the hinted user, recently enough for ``max_age``
        and ``prompt=login``, and these scopes allowed before), or for ``prompt=none``
        the error that says what is missing (OIDC Core 3.1.2.6). None: ask on the page."""
        prompts = set(pending.prompt.split())
        hinted = self.tokens.id_token_hint(hint) if hint else None
        if hint and hinted is None:
            refused = {"error": "invalid_request", "error_description": "Bad id_token_hint."}
            return self._redirect(
                self._back_to_client(pending.redirect_uri, refused, pending.state)
            )
        error = "login_required"
        if signed_in is not None:
            auth_time = signed_in.auth_time or signed_in.created_at
            same_user = hinted is None or hinted["sub"] == signed_in.user_id
            consent = self._store.get_consent(signed_in.user_id, pending.client_id)
            fresh = not self._stale(pending, auth_time)
            if same_user and fresh and _remembered(pending, consent):
                issued = self._issue_code(
                    pending, signed_in.user_id, auth_time, http.device, consent
                )
                return self._redirect(issued)
            if same_user and fresh:
                error = "consent_required"
        if "none" not in prompts:
            return None
        refused = {"error": error, "error_description": "The user must sign in on the page."}
        return self._redirect(self._back_to_client(pending.redirect_uri, refused, pending.state))

    @staticmethod
    def _description(error: oauth_errors.OAuth2Error) -> dict[str, str]:
        description = error.get_error_description()
        return {"error_description": description} if description else {}

    def _back_to_client(self, redirect_uri: str, params: dict[str, str], state: str) -> str:
        """The client's redirect URI with ``params``, ``state`` (if the request had one)
        and ``iss`` (RFC 9207) in its query."""
        if state:
            params["state"] = state
        params["iss"] = self.issuer
        location: str = add_params_to_uri(redirect_uri, list(params.items()))
        return location

    @staticmethod
    def _redirect(location: str) -> HttpAnswer:
        return HttpAnswer(302, {"Location": location, "Cache-Control": "no-store"})

    @staticmethod
    def _error_page(message: str) -> HttpAnswer:
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in error</title>"
            f"<h1>This sign-in link cannot be used</h1><p>{html.escape(message)}</p></html>"
        )
        headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        return HttpAnswer(400, headers, body)

    # ------------------------------------------------------------ the user's decision

    def _pending(self, request_id: str) -> AuthorizationRequest:
        if not request_id or len(request_id) > 100:
            raise errors.NotFound("No such authorization request.")
        pending = self._store.get_authorization_request(_hash(request_id), int(self._clock()))
        if pending is None:
            raise errors.NotFound("No such authorization request.")
        return pending

    def describe(self, request_id: str, who: tuple[str, str]) -> dict[str, Any]:
        """What the web page needs to ask the signed-in user ``who`` (user id, session
        id): the client, the scopes, where the browser goes, whether the user allowed
        these scopes before (``remembered``: the page may decide at once) and whether the
        request wants a fresh sign-in first (``reauthenticate``: ``prompt=login``, or a
        ``max_age`` the sign-in is older than)."""
        pending = self._pending(request_id)
        client = self.clients.get(pending.client_id)
        if client is None:
            raise errors.NotFound("No such authorization request.")
        user_id, session_id = who
        consent = self._store.get_consent(user_id, pending.client_id)
        return {
            "client": {"client_id": client.id, "name": client.name},
            "scopes": pending.scope.split(),
            "redirect_uri": pending.redirect_uri,
            "remembered": _remembered(pending, consent),
            "reauthenticate": self._stale(pending, self._auth_time(user_id, session_id)),
        }

    def _auth_time(self, user_id: str, session_id: str) -> int:
        """When the signed-in user last proved who they are: their session's sign-in."""
        session = self._store.get_session(user_id, session_id)
        return (session.auth_time or session.created_at) if session else 0

    def _stale(self, pending: AuthorizationRequest, auth_time: int) -> bool:
        """Whether the request needs a sign-in newer than ``auth_time`` (OIDC Core
        3.1.2.1: ``prompt=login`` asks for one after the request, ``max_age`` for one
        at most that many seconds old)."""
        asked_at = pending.expires_at - REQUEST_SECONDS
        # Whole seconds on both sides: a sign-in counts only from the second after.
        signed_in_since = auth_time > asked_at
        if "login" in pending.prompt.split() and not signed_in_since:
            return True
        # A sign-in made for this request satisfies any max_age, 0 included (else a
        # short one could never be met by the time the user decides).
        too_old = int(self._clock()) - auth_time > pending.max_age
        return pending.max_age >= 0 and too_old and not signed_in_since

    def decide(self, request_id: str, who: tuple[str, str], *, allow: bool, device: Device) -> str:
        """Spend the request on the decision of the signed-in user ``who`` (user id,
        session id); the URL to send the browser to. Of two decisions on one request,
        the second is ``NotFound``; an allow from a sign-in the request finds too old
        (``describe``'s ``reauthenticate``) is ``LoginRequired`` and spends nothing."""
        if not request_id or len(request_id) > 100:
            raise errors.NotFound("No such authorization request.")
        user_id, session_id = who
        auth_time = self._auth_time(user_id, session_id)
        if allow and self._stale(self._pending(request_id), auth_time):
            raise errors.LoginRequired()
        now = int(self._clock())
        pending = self._store.take_authorization_request(_hash(request_id), now)
        if pending is None:
            raise errors.NotFound("No such authorization request.")
        if not allow:
            refused = {"error": "access_denied", "error_description": "The user said no."}
            return self._back_to_client(pending.redirect_uri, refused, pending.state)
        before = self._store.get_consent(user_id, pending.client_id)
        return self._issue_code(pending, user_id, auth_time or now, device, before)

    def _issue_code(
        self,
        pending: AuthorizationRequest,
        user_id: str,
        auth_time: int,
        device: Device,
        before: ConsentRecord | None,
    ) -> str:
        """A code for ``pending``, the consent remembered (grown from ``before``, the
        user's consent to this client as the caller read it), and the redirect with it."""
        now = int(self._clock())
        user = self._accounts.get(user_id)
        code = secrets.token_urlsafe(32)
        record = AuthorizationCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            scope=pending.scope,
            nonce=pending.nonce,
            code_challenge=pending.code_challenge,
            user_id=user.id,
            username=user.username,
            email=user.email or "",
            email_verified=user.email_verified,
            display_name=user.display_name or "",
            auth_time=auth_time,
            session_id=new_id(),
            expires_at=now + CODE_SECONDS,
        )
        # The consent grows: the scopes allowed before stay allowed, from the first time.
        scopes = (before.scope.split() if before else []) + pending.scope.split()
        first = before.granted_at if before else now
        consent = ConsentRecord(user.id, pending.client_id, " ".join(dict.fromkeys(scopes)), first)
        event = device.event(user.id, "app_authorized", "success", now)
        if not self._store.put_authorization_code(
            _hash(code), record, consent=consent, event=event
        ):
            raise errors.NotFound("The account no longer exists.")
        granted = {"user_id": user.id, "client_id": pending.client_id, "scope": pending.scope}
        observability.count(_log, "OAuthAuthorized", granted)
        return self._back_to_client(pending.redirect_uri, {"code": code}, pending.state)

    # ------------------------------------------------------------ the token endpoint

    def claim_code(self, code: str, client: ClientRecord) -> _Code | None:
        if not code or len(code) > 100:
            return None
        code_hash = _hash(code)
        claim = self._store.claim_authorization_code(code_hash, int(self._clock()))
        if claim.spent is not None:
            # A second use: end the session the first one opened (RFC 6749 4.1.2); the
            # claim marked the code reused first, so a session not yet open never opens.
            self._store.delete_session(claim.spent.user_id, claim.spent.session_id)
            return None
        if claim.code is None or claim.code.client_id != client.id:
            return None
        return _Code(claim.code, code_hash)

    def token(self, http: HttpRequest) -> HttpAnswer:
        """The token endpoint: RFC 6749 5.1 answers, 5.2 errors; each counted
        (``OAuthTokenIssued`` by grant type, ``OAuthTokenError`` by error code, and
        ``OAuthClientRefused`` for the invalid_grant and invalid_client the alarm
        watches)."""
        request = _Request(http)
        grant_type = (request.payload.data.get("grant_type") or "")[:40]
        if not _visible(request):
            answer = oauth_error("invalid_request", NOT_VISIBLE)
        else:
            answer = self._server.create_token_response(request)
        fields = {"client_id": (request.payload.client_id or "")[:64], "grant_type": grant_type}
        if answer.status == 200:
            observability.count(_log, "OAuthTokenIssued", fields, ("GrantType", grant_type))
            return answer
        error = str(json.loads(answer.body).get("error", ""))
        observability.count(_log, "OAuthTokenError", {**fields, "error": error}, ("Error", error))
        if error in ("invalid_grant", "invalid_client"):
            observability.count(_log, "OAuthClientRefused", {**fields, "error": error})
        return answer
