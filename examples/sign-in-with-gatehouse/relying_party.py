"""Sign in with Gatehouse: a sample relying party (an OpenID Connect client) in one file.

The web side is the standard library's ``http.server``; the calls to Gatehouse are
plain ``urllib``; the ID token's checks are authlib's (``CodeIDToken``, on joserfc, the
JOSE library authlib itself uses), the same checks authlib's own clients make. What it
does, in the order a browser sees it:

1. ``/`` says who is signed in, or offers "Sign in with Gatehouse".
2. ``/login`` sends the browser to the authorization endpoint with PKCE (S256), a
   ``state`` (the answer belongs to this browser's request) and a ``nonce`` (the ID
   token was minted for this request), all three kept server-side for this browser.
3. ``/callback`` checks ``state`` and ``iss`` (RFC 9207: the answer comes from this
   issuer), exchanges the code with the client secret and the PKCE verifier, and
   verifies the ID token: signature against the JWKS, ``iss``, ``aud``, ``exp``,
   ``nonce`` and ``at_hash``.
4. ``/logout`` forgets the local session and sends the browser to the
   ``end_session_endpoint`` with the ID token as ``id_token_hint``, so Gatehouse ends
   the session it opened for this app too; Gatehouse sends it back to ``/signed-out``.

Configuration is the environment: ``GATEHOUSE_ISSUER`` (default
``http://localhost:8000``), ``CLIENT_ID`` and ``CLIENT_SECRET`` (from ``python -m
scripts.admin clients create``), ``APP_URL`` (this app's own base URL, default
``http://127.0.0.1:9000``). See README.md beside this file.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from urllib.request import Request, urlopen

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

COOKIE = "rp_session"
#: Seconds a browser session of this app lives (sign-in and signed-in alike).
SESSION_SECONDS = 3600
#: At most this many browser sessions are kept (in memory): the oldest go first.
MAX_SESSIONS = 10_000
HTTP_TIMEOUT_SECONDS = 10
#: Clock skew allowed on the ID token's ``exp`` and ``iat``.
LEEWAY_SECONDS = 60
SCOPE = "openid profile"


class SignInFailed(Exception):
    """A sign-in that cannot be completed; the message is shown to the user."""


# ------------------------------------------------------------------ talking to Gatehouse


def fetch_json(url: str, form: dict[str, str] | None = None, auth: str | None = None) -> Any:
    """GET (or POST ``form`` to) ``url`` and read its JSON answer, error answers too:
    the token endpoint says what went wrong in its JSON (RFC 6749 5.2)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise SignInFailed(f"refusing to fetch {url!r}: not http(s)")
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urlencode(form).encode("ascii")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None:
        headers["Authorization"] = auth
    request = Request(url, data=data, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:  # noqa: S310  # nosec B310
            return json.loads(answer.read())
    except HTTPError as error:
        try:
            return json.loads(error.read())
        except ValueError:
            raise SignInFailed(f"{url} answered {error.code}") from None
    except (URLError, OSError, ValueError) as error:
        raise SignInFailed(f"{url} could not be read: {error}") from None


@dataclass(frozen=True)
class Provider:
    """The OpenID Provider as its discovery document describes it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str

    @classmethod
    def discover(cls, issuer: str) -> Provider:
        """Read ``/.well-known/openid-configuration``; its ``issuer`` must be exactly
        the one configured (OpenID Connect Discovery 4.3), or every check that follows
        would compare against what a stranger chose."""
        metadata = fetch_json(f"{issuer}/.well-known/openid-configuration")
        if metadata.get("issuer") != issuer:
            raise SignInFailed(f"discovery names issuer {metadata.get('issuer')!r}, not {issuer!r}")
        if "S256" not in metadata.get("code_challenge_methods_supported", []):
            raise SignInFailed("the provider does not offer PKCE with S256")
        return cls(
            issuer=issuer,
            authorization_endpoint=metadata["authorization_endpoint"],
            token_endpoint=metadata["token_endpoint"],
            jwks_uri=metadata["jwks_uri"],
            end_session_endpoint=metadata["end_session_endpoint"],
        )


class Keys:
    """The provider's public keys, read again when a token names a key not yet seen
    (the provider rotated its keys)."""

    def __init__(self, jwks_uri: str) -> None:
        self._uri = jwks_uri
        self._lock = threading.Lock()
        self._keys: KeySet | None = None

    def get(self, reload: bool = False) -> KeySet:
        with self._lock:
            if self._keys is None or reload:
                self._keys = KeySet.import_key_set(fetch_json(self._uri))
            return self._keys


@dataclass(frozen=True)
class Client:
    """This app as Gatehouse knows it, and what it does with Gatehouse's answers."""

    provider: Provider
    keys: Keys
    client_id: str
    client_secret: str
    app_url: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.app_url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.app_url}/signed-out"

    def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.provider.authorization_endpoint}?{urlencode(query)}"

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The code for tokens: client_secret_basic (RFC 6749 2.3.1: each part
        form-encoded, then base64) and the PKCE verifier."""
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        auth = "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        answer = fetch_json(self.provider.token_endpoint, form, auth)
        if not isinstance(answer, dict) or "id_token" not in answer:
            error = answer.get("error", "no ID token") if isinstance(answer, dict) else answer
            raise SignInFailed(f"the token endpoint said: {error}")
        return answer

    def verify_id_token(self, tokens: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (RS256, a key of the JWKS) and its
        ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash`` hold."""
        id_token = str(tokens["id_token"])
        try:
            try:
                token = jwt.decode(id_token, self.keys.get(), algorithms=["RS256"])
            except InvalidKeyIdError:
                token = jwt.decode(id_token, self.keys.get(reload=True), algorithms=["RS256"])
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": self.provider.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                },
                {
                    "nonce": nonce,
                    "client_id": self.client_id,
                    "access_token": tokens.get("access_token"),
                },
            )
            claims.validate(now=int(time.time()), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as error:
            raise SignInFailed(f"the ID token was refused: {error}") from None
        return dict(claims)

    def logout_url(self, id_token: str, state: str) -> str:
        query = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": state,
        }
        return f"{self.provider.end_session_endpoint}?{urlencode(query)}"


# ------------------------------------------------------------------ browser sessions


class Sessions:
    """Each browser's state, kept in memory under a random cookie: the sign-in under
    way (state, nonce, PKCE verifier) or the signed-in user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, session_id: str | None) -> dict[str, Any]:
        with self._lock:
            found = self._data.get(session_id or "")
            if found is None or found[0] < time.time():
                return {}
            return dict(found[1])

    def put(self, session_id: str | None, data: dict[str, Any]) -> str:
        """Store ``data`` under a new id (a new id on every change: no fixation)."""
        with self._lock:
            self._data.pop(session_id or "", None)
            while len(self._data) >= MAX_SESSIONS:
                self._data.pop(next(iter(self._data)))
            new_id = secrets.token_urlsafe(32)
            self._data[new_id] = (time.time() + SESSION_SECONDS, data)
            return new_id


# ------------------------------------------------------------------ the pages


def page(title: str, *body: str) -> str:
    """A whole page; ``body`` is markup the caller built with html.escape."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{''.join(body)}</main></body></html>"
    )


SIGN_IN_LINK = '<p><a href="/login">Sign in with Gatehouse</a></p>'


class Handler(BaseHTTPRequestHandler):
    """The app's five routes. ``client`` and ``sessions`` are set on the class by
    ``serve``."""

    client: Client
    sessions: Sessions
    server_version = "SampleRP"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        routes = {
            "/": self.home,
            "/login": self.login,
            "/callback": self.callback,
            "/logout": self.logout,
            "/signed-out": self.signed_out,
        }
        route = routes.get(url.path)
        if route is None:
            self.send_page(404, page("Not found", "<p>No such page.</p>"))
            return
        route(query)

    # -------------------------------------------------------------- routes

    def home(self, query: dict[str, str]) -> None:
        user = self.session().get("user")
        if not user:
            self.send_page(200, page("Sample app", "<p>You are not signed in.</p>", SIGN_IN_LINK))
            return
        name = html.escape(str(user.get("preferred_username") or user["sub"]))
        self.send_page(
            200,
            page(
                "Sample app",
                f'<p id="greeting">Hello, {name}</p>',
                '<p><a href="/logout">Sign out</a></p>',
            ),
        )

    def login(self, query: dict[str, str]) -> None:
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        pending = {"state": state, "nonce": nonce, "verifier": verifier}
        session_id = self.sessions.put(self.session_id(), {"login": pending})
        self.redirect(self.client.authorization_url(state, nonce, verifier), session_id)

    def callback(self, query: dict[str, str]) -> None:
        pending = self.session().get("login")
        try:
            user, id_token = self.complete(pending, query)
        except SignInFailed as error:
            session_id = self.sessions.put(self.session_id(), {})  # the attempt is spent
            body = page("Sign-in failed", f"<p>{html.escape(str(error))}</p>", SIGN_IN_LINK)
            self.send_page(400, body, session_id)
            return
        session_id = self.sessions.put(self.session_id(), {"user": user, "id_token": id_token})
        self.redirect("/", session_id)

    def complete(
        self, pending: dict[str, str] | None, query: dict[str, str]
    ) -> tuple[dict[str, Any], str]:
        """The signed-in user's claims and ID token from the callback's ``query``."""
        if not pending:
            raise SignInFailed("No sign-in is under way in this browser: start again.")
        if not hmac.compare_digest(query.get("state", ""), pending["state"]):
            raise SignInFailed("The answer does not belong to this browser's sign-in.")
        if query.get("iss") != self.client.provider.issuer:
            raise SignInFailed("The answer does not come from the expected issuer.")
        if "error" in query:
            words = query.get("error_description") or query["error"]
            raise SignInFailed(f"Gatehouse did not sign you in: {words} ({query['error']}).")
        tokens = self.client.exchange(query.get("code", ""), pending["verifier"])
        claims = self.client.verify_id_token(tokens, pending["nonce"])
        return claims, str(tokens["id_token"])

    def logout(self, query: dict[str, str]) -> None:
        id_token = self.session().get("id_token")
        if not id_token:
            self.redirect("/", self.sessions.put(self.session_id(), {}))
            return
        state = secrets.token_urlsafe(32)
        session_id = self.sessions.put(self.session_id(), {"logout_state": state})
        self.redirect(self.client.logout_url(id_token, state), session_id)

    def signed_out(self, query: dict[str, str]) -> None:
        expected = self.session().get("logout_state", "")
        ours = bool(expected) and hmac.compare_digest(query.get("state", ""), expected)
        # The state says the browser comes back from the logout this app started.
        words = (
            "You are signed out of the sample app and of its Gatehouse session."
            if ours
            else "You are signed out of the sample app."
        )
        session_id = self.sessions.put(self.session_id(), {})
        self.send_page(200, page("Signed out", f"<p>{words}</p>", SIGN_IN_LINK), session_id)

    # -------------------------------------------------------------- plumbing

    def session_id(self) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else None

    def session(self) -> dict[str, Any]:
        return self.sessions.get(self.session_id())

    def cookie_header(self, session_id: str) -> str:
        # Lax, not Strict: the browser comes back to /callback from Gatehouse, another
        # site, and a Strict cookie would stay behind. Secure too when served over https.
        secure = "; Secure" if self.client.app_url.startswith("https:") else ""
        return f"{COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax{secure}"

    def redirect(self, location: str, session_id: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Set-Cookie", self.cookie_header(session_id))
        self.common_headers()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_page(self, status: int, body: str, session_id: str | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if session_id is not None:
            self.send_header("Set-Cookie", self.cookie_header(session_id))
        self.common_headers()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def common_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        # The callback's URL holds the code: never send it on as a Referer.
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; img-src data:; form-action 'none'; frame-ancestors 'none'",
        )

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve() -> None:
    issuer = os.environ.get("GATEHOUSE_ISSUER", "http://localhost:8000").rstrip("/")
    app_url = os.environ.get("APP_URL", "http://127.0.0.1:9000").rstrip("/")
    client_id = os.environ.get("CLIENT_ID", "")
    client_secret = os.environ.get("CLIENT_SECRET", "")
    if not client_id or not client_secret:
        sys.exit("Set CLIENT_ID and CLIENT_SECRET (python -m scripts.admin clients create).")
    provider = Provider.discover(issuer)
    Handler.client = Client(provider, Keys(provider.jwks_uri), client_id, client_secret, app_url)
    Handler.sessions = Sessions()
    address = urlsplit(app_url)
    server = ThreadingHTTPServer((address.hostname or "127.0.0.1", address.port or 80), Handler)
    print(f"Sample app on {app_url}, signing in with {issuer}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    serve()
