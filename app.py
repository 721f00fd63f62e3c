"""Gatehouse's HTTP routes and the bearer-token authorizer.

Routes only read the request, call a service from ``chalicelib`` and shape the answer;
every rule lives in a chalicelib module (see docs/architecture.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import (
    AuthRequest,
    AuthResponse,
    Chalice,
    CloudWatchEvent,
    Rate,
    Request,
    Response,
    SQSEvent,
)

from chalicelib import wiring
from chalicelib.accounts import identity
from chalicelib.accounts.selfservice import StepUp
from chalicelib.accounts.sessions import Device
from chalicelib.accounts.users import Registration, public_user
from chalicelib.crypto.tokens import bearer_token
from chalicelib.edge import http, middleware, openapi, web
from chalicelib.edge.bodies import BODIES
from chalicelib.oauth import discovery
from chalicelib.oauth.messages import HttpAnswer, HttpRequest, oauth_error
from chalicelib.oauth.userinfo import presented_token
from chalicelib.platform import config, errors, mail, observability
from chalicelib.todos.lists import public_todo

if TYPE_CHECKING:
    from chalicelib.oauth.provider import Provider

app = Chalice(app_name="gatehouse", configure_logs=False)
observability.configure(app.log)
app.register_middleware(
    middleware.middleware_for(app, lambda: wiring.get().settings.cors_origins), "http"
)

#: Content types an OAuth form endpoint lets through, to answer RFC 6749 JSON itself.
ANY_TYPE = "*/*"
FORGOT_ANSWER = {"message": "If that address belongs to an account, a reset link is on its way."}
#: How long caches may keep the JWKS and discovery documents. Short: a rotated-in key
#: must reach verifiers before it signs (rotate, wait this long, then tokens use it).
PUBLIC_MAX_AGE = 300


def _request() -> Request:
    request = app.current_request
    if request is None:  # only outside a request, which no route ever is
        raise errors.GatehouseError()
    return request


def _body() -> dict[str, Any]:
    """The current route's body, checked against its entry in ``BODIES``."""
    request = _request()
    body = BODIES[(request.method, request.path)]
    limit = wiring.get().settings.max_body_bytes
    return http.json_object(request, body.fields, max_bytes=limit, optional=body.optional)


@app.authorizer(ttl_seconds=0)
def bearer(auth_request: AuthRequest) -> AuthResponse | dict[str, Any]:
    """Accept a valid access token whose session is alive; the cache is off (ttl 0) so
    that logout takes effect on the next request."""
    try:
        claims = wiring.get().sessions.authorize(bearer_token(auth_request.token or ""))
    except errors.InvalidToken:
        return http.deny(auth_request.method_arn)
    return AuthResponse(
        routes=["*"],
        principal_id=claims.user_id,
        context={"username": claims.username, "sid": claims.session_id},
    )


def _query(name: str) -> str | None:
    params = _request().query_params
    return params.get(name) if params is not None else None


def _caller() -> http.Caller:
    return http.caller(_request())


def _device() -> Device:
    return http.device(_request())


@app.route("/register", methods=["POST"])
def register() -> Response:
    user = wiring.get().signup.register(Registration(**_body()), _device())
    return http.json_response({"user": public_user(user)}, status=201)


@app.route("/login", methods=["POST"])
def login() -> Response:
    body = _body()
    pair = wiring.get().login.login(
        body["username"], body["password"], body.get("totp_code"), _device(), body.get("passkey")
    )
    return _tokens_for_page(pair, body.get("refresh_cookie", False))


@app.route("/token/refresh", methods=["POST"])
def refresh_token() -> Response:
    body = _body()
    in_cookie = body.get("refresh_cookie", False) or "refresh_token" not in body
    presented = body.get("refresh_token") or http.cookie(_request(), http.REFRESH_COOKIE)
    if not presented:
        raise errors.ValidationError.of_field(
            "refresh_token", "required", "'refresh_token' is required."
        )
    pair = wiring.get().sessions.refresh(presented, _device())
    return _tokens_for_page(pair, in_cookie)


def _tokens_for_page(pair: dict[str, Any], in_cookie: bool) -> Response:
    """The TokenPair; for the web page (cookies), also the provider's browser sign-in."""
    signin = wiring.get().browser.cookie_value(pair["refresh_token"]) if in_cookie else None
    return http.token_response_for(_request(), pair, in_cookie, signin)


@app.route("/logout", methods=["POST"], authorizer=bearer)
def logout() -> Response:
    body = _body()
    who = _caller()
    wiring.get().sessions.logout(who.user_id, who.session_id, body.get("refresh_token"))
    return http.signed_out(_request())


@app.route("/logout/all", methods=["POST"], authorizer=bearer)
def logout_everywhere() -> Response:
    wiring.get().sessions.end_all(_caller().user_id)
    return http.signed_out(_request())


@app.route("/me/sessions", authorizer=bearer)
def list_sessions() -> Response:
    who = _caller()
    listed = wiring.get().sessions.list(who.user_id, who.session_id)
    return http.json_response({"sessions": listed})


@app.route("/me/sessions/{session_id}", methods=["DELETE"], authorizer=bearer)
def end_session(session_id: str) -> Response:
    wiring.get().sessions.end(_caller().user_id, session_id)
    return http.no_content()


@app.route("/protected", authorizer=bearer)
def protected() -> Response:
    who = _caller()
    user = {"id": who.user_id, "username": who.username}
    return http.json_response({"message": f"Hello, {who.username}.", "user": user})


@app.route("/me", authorizer=bearer)
def me() -> Response:
    return http.json_response(public_user(wiring.get().accounts.get(_caller().user_id)))


@app.route("/me", methods=["PATCH"], authorizer=bearer)
def update_me() -> Response:
    body = _body()
    user = wiring.get().me.update_profile(
        _caller().user_id,
        email=body.get("email"),
        display_name=body.get("display_name"),
        step_up=StepUp(body.get("password"), body.get("totp_code")),
        device=_device(),
    )
    return http.json_response(public_user(user))


@app.route("/me", methods=["DELETE"], authorizer=bearer)
def delete_me() -> Response:
    body = _body()
    wiring.get().me.delete(_caller().user_id, body["password"], _device())
    return http.no_content()


@app.route("/me/password", methods=["POST"], authorizer=bearer)
def change_password() -> Response:
    body = _body()
    who = _caller()
    wiring.get().me.change_password(
        who.user_id, who.session_id, body["current_password"], body["new_password"], _device()
    )
    return http.no_content()


@app.route("/me/activity", authorizer=bearer)
def activity() -> Response:
    return http.json_response({"events": wiring.get().accounts.activity(_caller().user_id)})


@app.route("/password/forgot", methods=["POST"])
def forgot_password() -> Response:
    body = _body()
    email = identity.check_email(body["email"])
    wiring.get().recovery.forgot(email, _device())
    return http.json_response(FORGOT_ANSWER, status=202)


@app.route("/password/reset", methods=["POST"])
def reset_password() -> Response:
    body = _body()
    wiring.get().recovery.reset(body["token"], body["new_password"], _device())
    return http.no_content()


@app.route("/email/verify", methods=["POST"])
def verify_email() -> Response:
    body = _body()
    wiring.get().recovery.verify_email(body["token"], _device())
    return http.no_content()


@app.route("/me/email/verification", methods=["POST"], authorizer=bearer)
def send_verification() -> Response:
    svc = wiring.get()
    svc.recovery.send_verification(svc.accounts.get(_caller().user_id))
    return http.json_response({"message": "A verification message is on its way."}, status=202)


@app.route("/me/mfa/totp", methods=["POST"], authorizer=bearer)
def enrol_totp() -> Response:
    body = _body()
    enrolment = wiring.get().me.enrol_totp(_caller().user_id, body["password"], _device())
    return http.json_response({"secret": enrolment.secret, "otpauth_uri": enrolment.otpauth_uri})


@app.route("/me/mfa/totp/confirm", methods=["POST"], authorizer=bearer)
def confirm_totp() -> Response:
    body = _body()
    codes = wiring.get().me.confirm_totp(_caller().user_id, body["code"], _device())
    return http.json_response({"recovery_codes": codes})


@app.route("/me/mfa/totp", methods=["DELETE"], authorizer=bearer)
def disable_totp() -> Response:
    body = _body()
    wiring.get().me.disable_totp(_caller().user_id, body["password"], _device())
    return http.no_content()


@app.route("/me/passkeys", authorizer=bearer)
def list_passkeys() -> Response:
    return http.json_response({"passkeys": wiring.get().passkeys.list_for(_caller().user_id)})


@app.route("/me/passkeys/options", methods=["POST"], authorizer=bearer)
def passkey_creation_options() -> Response:
    body = _body()
    options = wiring.get().me.passkey_options(
        _caller().user_id, body["password"], body.get("totp_code"), _device()
    )
    return http.json_response({"options": options})


@app.route("/me/passkeys", methods=["POST"], authorizer=bearer)
def add_passkey() -> Response:
    body = _body()
    passkey = wiring.get().passkeys.enrol(
        _caller().user_id, body["credential"], body.get("name"), _device()
    )
    return http.json_response(passkey, status=201)


@app.route("/me/passkeys/{passkey_id}", methods=["PATCH"], authorizer=bearer)
def rename_passkey(passkey_id: str) -> Response:
    body = _body()
    passkey = wiring.get().passkeys.rename(_caller().user_id, passkey_id, body["name"], _device())
    return http.json_response(passkey)


@app.route("/me/passkeys/{passkey_id}", methods=["DELETE"], authorizer=bearer)
def remove_passkey(passkey_id: str) -> Response:
    wiring.get().passkeys.remove(_caller().user_id, passkey_id, _device())
    return http.no_content()


@app.route("/passkeys/options", methods=["POST"])
def passkey_request_options() -> Response:
    body = _body()
    options = wiring.get().passkeys.request_options(body.get("username"), _device())
    return http.json_response({"options": options})


@app.route("/passkeys/login", methods=["POST"])
def passkey_login() -> Response:
    body = _body()
    pair = wiring.get().passkeys.sign_in(body["credential"], _device())
    return _tokens_for_page(pair, body.get("refresh_cookie", False))


@app.route("/todos", authorizer=bearer)
def list_todos() -> Response:
    todos, following = wiring.get().todos.page(
        _caller().user_id, limit=_query("limit"), cursor=_query("cursor")
    )
    return http.json_response({"items": [public_todo(t) for t in todos], "next_cursor": following})


@app.route("/todos", methods=["POST"], authorizer=bearer)
def create_todo() -> Response:
    body = _body()
    todo = wiring.get().todos.create(_caller().user_id, body["text"], body.get("completed", False))
    return http.json_response(public_todo(todo), status=201)


@app.route("/todos/{todo_id}", authorizer=bearer)
def get_todo(todo_id: str) -> Response:
    return http.json_response(public_todo(wiring.get().todos.get(_caller().user_id, todo_id)))


@app.route("/todos/{todo_id}", methods=["PATCH"], authorizer=bearer)
def update_todo(todo_id: str) -> Response:
    body = _body()
    todo = wiring.get().todos.update(_caller().user_id, todo_id, body)
    return http.json_response(public_todo(todo))


@app.route("/todos/{todo_id}", methods=["DELETE"], authorizer=bearer)
def delete_todo(todo_id: str) -> Response:
    wiring.get().todos.delete(_caller().user_id, todo_id)
    return http.no_content()


@app.route("/")
def web_page() -> Response:
    # A stage root opened without its slash (/api) would resolve the page's relative
    # asset links outside the stage: send the browser to /api/ first.
    path = str(_request().context.get("path") or "/")
    if not path.endswith("/"):
        return http.redirect(path + "/")
    return _asset("index.html")


@app.route("/assets/{name}")
def web_asset(name: str) -> Response:
    return _asset(name)


def _asset(name: str) -> Response:
    text, content_type = web.asset(name)
    return http.text_response(text, content_type, web.SECURITY_HEADERS)


@app.route("/.well-known/jwks.json")
def jwks() -> Response:
    return http.public_json(wiring.get().tokens.ring.jwks(), PUBLIC_MAX_AGE)


@app.route("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return http.public_json(discovery.metadata(wiring.get().settings.issuer), PUBLIC_MAX_AGE)


@app.route("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    return http.public_json(discovery.metadata(wiring.get().settings.issuer), PUBLIC_MAX_AGE)


# ------------------------------------------------------------------ OAuth 2.0 / OpenID Connect
# The provider (chalicelib/oauth/provider.py, on authlib) is built on the first of these.


def _oauth_request() -> HttpRequest:
    request = _request()
    settings = wiring.get().settings
    url = settings.issuer + request.path
    return http.oauth_request(request, url, max_bytes=settings.max_body_bytes)


@app.route("/oauth2/authorize", content_types=[http.FORM, http.JSON])
def oauth_authorize() -> Response:
    return http.oauth_response(_request(), wiring.get().oauth.authorize(_oauth_request()))


@app.route("/oauth2/authorize", methods=["POST"], content_types=[http.FORM])
def oauth_authorize_form() -> Response:
    """The same request as a form post (OIDC Core 3.1.2.1: GET and POST both)."""
    return http.oauth_response(_request(), wiring.get().oauth.authorize(_oauth_request()))


@app.route("/oauth2/requests/{request_id}", authorizer=bearer)
def oauth_request(request_id: str) -> Response:
    who = _caller()
    described = wiring.get().oauth.describe(request_id, (who.user_id, who.session_id))
    return http.json_response(described)


@app.route("/oauth2/requests/{request_id}", methods=["POST"], authorizer=bearer)
def oauth_decision(request_id: str) -> Response:
    decision = _body()["decision"]
    if decision not in ("allow", "deny"):
        raise errors.ValidationError.of_field("decision", "invalid", "allow or deny")
    who = _caller()
    redirect_to = wiring.get().oauth.decide(
        request_id, (who.user_id, who.session_id), allow=decision == "allow", device=_device()
    )
    return http.json_response({"redirect_to": redirect_to})


@app.route("/me/apps", authorizer=bearer)
def connected_apps() -> Response:
    return http.json_response({"apps": wiring.get().apps.list(_caller().user_id)})


@app.route("/me/apps/{client_id}", methods=["DELETE"], authorizer=bearer)
def remove_app(client_id: str) -> Response:
    wiring.get().apps.remove(_caller().user_id, client_id, _device())
    return http.no_content()


@app.route("/oauth2/token", methods=["POST"], content_types=[http.FORM, ANY_TYPE])
def oauth_token() -> Response:
    return _oauth_form(lambda provider, request: provider.token(request))


@app.route("/oauth2/revoke", methods=["POST"], content_types=[http.FORM, ANY_TYPE])
def oauth_revoke() -> Response:
    return _oauth_form(lambda provider, request: provider.revoke(request))


@app.route("/oauth2/introspect", methods=["POST"], content_types=[http.FORM, ANY_TYPE])
def oauth_introspect() -> Response:
    return _oauth_form(lambda provider, request: provider.introspect(request))


def _oauth_form(answer: Callable[[Provider, HttpRequest], HttpAnswer]) -> Response:
    """An endpoint that answers RFC 6749 JSON errors, for a body that is not a form or a
    malformed one too (these routes take any content type so that Chalice's 415 problem
    never answers an OAuth client)."""
    if not http.is_form(_request()):
        refused = oauth_error("invalid_request", f"Send the parameters as {http.FORM}.")
        return http.oauth_response(_request(), refused)
    try:
        request = _oauth_request()
    except errors.ValidationError as error:
        return http.oauth_response(_request(), oauth_error("invalid_request", error.detail))
    return http.oauth_response(_request(), answer(wiring.get().oauth, request))


@app.route("/oauth2/logout", content_types=[http.FORM, http.JSON])
def oauth_logout() -> Response:
    return http.oauth_response(_request(), wiring.get().oauth.logout(_oauth_request()))


@app.route("/oauth2/logout", methods=["POST"], content_types=[http.FORM])
def oauth_logout_form() -> Response:
    """RP-Initiated Logout 2: GET and POST both."""
    return http.oauth_response(_request(), wiring.get().oauth.logout(_oauth_request()))


@app.route("/oauth2/userinfo", content_types=[http.FORM, http.JSON])
def oauth_userinfo() -> Response:
    """Not behind the authorizer: the token may also come in a form body (RFC 6750 2.2),
    and it is a client's token, which the first-party authorizer refuses."""
    return _userinfo()


@app.route("/oauth2/userinfo", methods=["POST"], content_types=[http.FORM, http.JSON])
def oauth_userinfo_form() -> Response:
    return _userinfo()


def _userinfo() -> Response:
    request = _oauth_request()
    token = presented_token(str(request.headers.get("authorization", "")), request.form)
    return http.json_response(wiring.get().userinfo.claims(token))


@app.route("/health")
def health() -> Response:
    checks = wiring.get().health()
    if all(state == "ok" for state in checks.values()):
        return http.json_response(
            {"status": "ok", "checks": checks}, headers={"Cache-Control": "no-cache"}
        )
    return http.json_response(
        {"status": "unavailable", "checks": checks},
        status=503,
        headers={"Cache-Control": "no-cache", "Retry-After": "5"},
    )


@app.route("/openapi.json")
def openapi_json() -> Response:
    return http.public_json(_openapi_document(), PUBLIC_MAX_AGE)


@functools.cache
def _openapi_document() -> dict[str, Any]:
    """Built on first request, once per container: every route is declared by then."""
    return openapi.document(app, BODIES)


@app.schedule(Rate(1, unit=Rate.HOURS))
def rotate_keys(event: CloudWatchEvent) -> None:
    """The signing keys' scheduled step (chalicelib/crypto/rotation.py): publish a new key,
    let it sign once every cache has seen it, retire the old one once no live token
    can carry it. Hourly, so each wait ends within the hour after it is due."""
    wiring.rotation(config.Settings.from_env()).run()


#: One message per invocation: a failed send is retried alone, never resending the
#: batch's messages that went out before it.
MAIL_BATCH_SIZE = 1


@app.on_sqs_message(queue=config.mail_queue_name(), batch_size=MAIL_BATCH_SIZE)
def send_mail(event: SQSEvent) -> None:
    """The mail queue's handler: sends each queued message through SES. A failure
    raises, so SQS delivers the message again (then the dead-letter queue)."""
    mail.deliver((record.body for record in event), wiring.delivery())


middleware.answer_other_methods(app)
