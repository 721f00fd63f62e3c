"""Gatehouse's HTTP routes and the bearer-token authorizer.

Routes only read the request, call a service from ``chalicelib`` and shape the answer;
every rule lives in a chalicelib module (see README, "Architecture").
"""

from __future__ import annotations

from typing import Any

from chalice.app import AuthRequest, AuthResponse, Chalice, Request, Response

from chalicelib import errors, http, observability, services
from chalicelib.accounts import Registration, public_user
from chalicelib.http import Field
from chalicelib.tokens import bearer_token

app = Chalice(app_name="gatehouse", configure_logs=False)
observability.configure(app.log)
app.register_middleware(http.middleware, "http")

REGISTER_FIELDS = (
    Field("username", max_length=256),
    Field("password", max_length=1024),
    Field("email", required=False, max_length=320),
    Field("display_name", required=False, max_length=256),
)
LOGIN_FIELDS = (
    Field("username", max_length=320),
    Field("password", max_length=1024),
    Field("totp_code", required=False, max_length=64),
)
REFRESH_FIELDS = (Field("refresh_token", max_length=1024),)
LOGOUT_FIELDS = (Field("refresh_token", required=False, max_length=1024),)
#: How long caches may keep the JWKS and discovery documents. Short: a rotated-in key
#: must reach verifiers before it signs (rotate, wait this long, then tokens use it).
PUBLIC_MAX_AGE = 300


def _request() -> Request:
    request = app.current_request
    if request is None:  # only outside a request, which no route ever is
        raise errors.GatehouseError()
    return request


def _body(fields: tuple[Field, ...], *, optional: bool = False) -> dict[str, Any]:
    limit = services.get().settings.max_body_bytes
    return http.json_object(_request(), fields, max_bytes=limit, optional=optional)


@app.authorizer(ttl_seconds=0)
def bearer(auth_request: AuthRequest) -> AuthResponse | dict[str, Any]:
    """Accept a valid access token whose session is alive; the cache is off (ttl 0) so
    that logout takes effect on the next request."""
    try:
        claims = services.get().sessions.authorize(bearer_token(auth_request.token or ""))
    except errors.InvalidToken:
        return http.deny(auth_request.method_arn)
    return AuthResponse(
        routes=["*"],
        principal_id=claims.user_id,
        context={"username": claims.username, "sid": claims.session_id},
    )


@app.route("/register", methods=["POST"])
def register() -> Response:
    body = _body(REGISTER_FIELDS)
    user = services.get().accounts.register(Registration(**body))
    return http.json_response({"user": public_user(user)}, status=201)


@app.route("/login", methods=["POST"])
def login() -> Response:
    body = _body(LOGIN_FIELDS)
    svc = services.get()
    user = svc.accounts.authenticate(body["username"], body["password"])
    return http.token_response(svc.sessions.start(user, http.device(_request())))


@app.route("/token/refresh", methods=["POST"])
def refresh_token() -> Response:
    body = _body(REFRESH_FIELDS)
    pair = services.get().sessions.refresh(body["refresh_token"], http.device(_request()))
    return http.token_response(pair)


@app.route("/logout", methods=["POST"], authorizer=bearer)
def logout() -> Response:
    body = _body(LOGOUT_FIELDS, optional=True)
    who = http.caller(_request())
    services.get().sessions.logout(who.user_id, who.session_id, body.get("refresh_token"))
    return http.no_content()


@app.route("/logout/all", methods=["POST"], authorizer=bearer)
def logout_everywhere() -> Response:
    services.get().sessions.end_all(http.caller(_request()).user_id)
    return http.no_content()


@app.route("/me/sessions", authorizer=bearer)
def list_sessions() -> Response:
    who = http.caller(_request())
    listed = services.get().sessions.list(who.user_id, who.session_id)
    return http.json_response({"sessions": listed})


@app.route("/me/sessions/{session_id}", methods=["DELETE"], authorizer=bearer)
def end_session(session_id: str) -> Response:
    services.get().sessions.end(http.caller(_request()).user_id, session_id)
    return http.no_content()


@app.route("/protected", authorizer=bearer)
def protected() -> Response:
    who = http.caller(_request())
    user = {"id": who.user_id, "username": who.username}
    return http.json_response({"message": f"Hello, {who.username}.", "user": user})


@app.route("/.well-known/jwks.json")
def jwks() -> Response:
    return http.public_json(services.get().tokens.ring.jwks(), PUBLIC_MAX_AGE)


@app.route("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    tokens = services.get().tokens
    base = http.base_url(_request())
    return http.public_json(tokens.discovery(f"{base}/.well-known/jwks.json"), PUBLIC_MAX_AGE)


@app.route("/health")
def health() -> Response:
    checks = services.get().health()
    if all(state == "ok" for state in checks.values()):
        return http.json_response(
            {"status": "ok", "checks": checks}, headers={"Cache-Control": "no-cache"}
        )
    return http.json_response(
        {"status": "unavailable", "checks": checks},
        status=503,
        headers={"Cache-Control": "no-cache", "Retry-After": "5"},
    )


http.answer_other_methods(app)
