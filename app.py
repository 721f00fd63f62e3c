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


def _request() -> Request:
    request = app.current_request
    if request is None:  # only outside a request, which no route ever is
        raise errors.GatehouseError()
    return request


def _body(fields: tuple[Field, ...]) -> dict[str, Any]:
    limit = services.get().settings.max_body_bytes
    return http.json_object(_request(), fields, max_bytes=limit)


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
    request = _request()
    pair = svc.sessions.start(user, user_agent=http.user_agent(request), ip=http.client_ip(request))
    return http.json_response(pair, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@app.route("/protected", authorizer=bearer)
def protected() -> Response:
    who = http.caller(_request())
    user = {"id": who.user_id, "username": who.username}
    return http.json_response({"message": f"Hello, {who.username}.", "user": user})


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
