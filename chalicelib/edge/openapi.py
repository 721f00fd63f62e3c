"""The OpenAPI 3.1 document of the API, generated from the app itself so it cannot drift.

Paths, methods, path parameters and the bearer requirement come from ``app.routes``;
request bodies from the same ``Body`` specs the routes check (``bodies.BODIES``).
What the code cannot tell (the success answer, the errors its services raise, query
parameters) is in ``OPERATIONS``, and ``document`` refuses an app with a route missing
there or an entry for a route that no longer exists: a new route without its docs fails
the tests instead of silently vanishing from the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalice.app import Chalice, RouteEntry

from chalicelib.edge.http import FORM, JSON, PROBLEM_JSON, Body, Field
from chalicelib.platform.shapes import Schema

#: Views that ``middleware.answer_other_methods`` registers: 405 answers, not operations.
NOT_SERVED = "method_not_allowed"
TEXT = "text/html; charset=utf-8"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


def _object(properties: Mapping[str, Schema]) -> Schema:
    """A closed object whose members are all always present (our answers never omit one)."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_BOOL: Schema = {"type": "boolean"}
_SECONDS: Schema = {"type": "integer", "description": "Unix time, seconds."}

SCHEMAS: dict[str, Schema] = {
    "User": _object(
        {
            "id": _STR,
            "username": _STR,
            "email": _nullable("string"),
            "email_verified": _BOOL,
            "display_name": _nullable("string"),
            "mfa_enabled": _BOOL,
            "created_at": _SECONDS,
        }
    ),
    "Registered": _object({"user": _ref("User")}),
    "TokenPair": _object(
        {
            "access_token": _STR,
            "token_type": {"const": "Bearer"},
            "expires_in": _INT,
            # null when the refresh token travels in the cookie (refresh_cookie: true)
            "refresh_token": _nullable("string"),
            "refresh_expires_in": _INT,
        }
    ),
    "Todo": _object(
        {
            "id": _STR,
            "text": _STR,
            "completed": _BOOL,
            "created_at": _SECONDS,
            "updated_at": _SECONDS,
        }
    ),
    "TodoPage": _object(
        {"items": {"type": "array", "items": _ref("Todo")}, "next_cursor": _nullable("string")}
    ),
    "Session": _object(
        {
            "id": _STR,
            "created_at": _SECONDS,
            "last_used_at": _SECONDS,
            "user_agent": _STR,
            "ip": _STR,
            "current": _BOOL,
        }
    ),
    "SessionList": _object({"sessions": {"type": "array", "items": _ref("Session")}}),
    "Event": _object(
        {"type": _STR, "at": _SECONDS, "ip": _STR, "user_agent": _STR, "outcome": _STR}
    ),
    "EventList": _object({"events": {"type": "array", "items": _ref("Event")}}),
    "Protected": _object({"message": _STR, "user": _object({"id": _STR, "username": _STR})}),
    "Message": _object({"message": _STR}),
    "TotpEnrolment": _object({"secret": _STR, "otpauth_uri": _STR}),
    "RecoveryCodes": _object({"recovery_codes": {"type": "array", "items": _STR}}),
    "JwkSet": {
        "type": "object",
        "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        "required": ["keys"],
    },
    "Discovery": {
        "type": "object",
        "description": "OpenID Provider metadata (OIDC Discovery 3, RFC 8414); every URL"
        " is under the issuer.",
        "properties": {
            "issuer": _STR,
            "authorization_endpoint": _STR,
            "token_endpoint": _STR,
            "userinfo_endpoint": _STR,
            "jwks_uri": _STR,
            "scopes_supported": {"type": "array", "items": _STR},
            "response_types_supported": {"type": "array", "items": _STR},
            "grant_types_supported": {"type": "array", "items": _STR},
            "code_challenge_methods_supported": {"type": "array", "items": _STR},
            "token_endpoint_auth_methods_supported": {"type": "array", "items": _STR},
            "authorization_response_iss_parameter_supported": _BOOL,
        },
        "required": [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
        ],
    },
    "AuthorizationRequest": _object(
        {
            "client": _object({"client_id": _STR, "name": _STR}),
            "scopes": {"type": "array", "items": _STR},
            "redirect_uri": _STR,
            "remembered": {**_BOOL, "description": "The user allowed these scopes before."},
            "reauthenticate": {
                **_BOOL,
                "description": "Sign in again first (prompt=login, or max_age passed).",
            },
        }
    ),
    "RedirectTo": _object({"redirect_to": {**_STR, "description": "Where to send the browser."}}),
    "OAuthTokens": {
        "type": "object",
        "description": "RFC 6749 5.1; `id_token` with the openid scope, `refresh_token`"
        " with offline_access.",
        "properties": {
            "access_token": _STR,
            "token_type": {"const": "Bearer"},
            "expires_in": _INT,
            "scope": _STR,
            "id_token": _STR,
            "refresh_token": _STR,
        },
        "required": ["access_token", "token_type", "expires_in", "scope"],
    },
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 5.2 (the token endpoint answers these, not problems).",
        "properties": {"error": _STR, "error_description": _STR},
        "required": ["error"],
    },
    "AppList": _object(
        {
            "apps": {
                "type": "array",
                "items": _object(
                    {
                        "client_id": _STR,
                        "name": _STR,
                        "scopes": {"type": "array", "items": _STR},
                        "connected_at": _SECONDS,
                        "last_used_at": {"type": ["integer", "null"]},
                    }
                ),
            }
        }
    ),
    "Introspection": {
        "type": "object",
        "description": 'RFC 7662 2.2: `{"active": false}` for a dead or unknown token.',
        "properties": {
            "active": _BOOL,
            "sub": _STR,
            "client_id": _STR,
            "scope": _STR,
            "exp": _INT,
            "iat": _INT,
            "iss": _STR,
            "token_type": _STR,
        },
        "required": ["active"],
    },
    "UserInfo": {
        "type": "object",
        "description": "OIDC Core 5.3: `sub`, and the claims of the granted scopes.",
        "properties": {
            "sub": _STR,
            "email": _STR,
            "email_verified": _BOOL,
            "preferred_username": _STR,
            "name": _STR,
        },
        "required": ["sub"],
    },
    "Health": _object(
        {
            "status": {"enum": ["ok", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": _STR},
        }
    ),
    "Passkey": _object(
        {
            "id": {**_STR, "description": "The credential id, base64url."},
            "name": _STR,
            "created_at": _SECONDS,
            "last_used_at": {"type": ["integer", "null"], "description": "Null until used."},
            "transports": {"type": "array", "items": _STR},
            "backed_up": _BOOL,
        }
    ),
    "PasskeyList": _object({"passkeys": {"type": "array", "items": _ref("Passkey")}}),
    "CreationOptions": _object(
        {
            "options": {
                "description": "PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3).",
                "type": "object",
                "required": [
                    "rp",
                    "user",
                    "challenge",
                    "pubKeyCredParams",
                    "excludeCredentials",
                    "authenticatorSelection",
                ],
            }
        }
    ),
    "RequestOptions": _object(
        {
            "options": {
                "description": "PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3).",
                "type": "object",
                "required": ["challenge", "rpId", "allowCredentials", "userVerification"],
            }
        }
    ),
    "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
    "FieldError": _object({"field": _STR, "code": _STR, "message": _STR}),
    "Problem": {
        "description": "RFC 9457 problem document; `code` is stable and machine-readable.",
        "type": "object",
        "properties": {
            "type": _STR,
            "title": _STR,
            "status": _INT,
            "detail": _STR,
            "code": _STR,
            "errors": {"type": "array", "items": _ref("FieldError")},
        },
        "required": ["type", "title", "status", "detail", "code"],
        "additionalProperties": False,
    },
}


def _header(description: str, schema: Schema = _STR) -> Schema:
    return {"description": description, "required": True, "schema": schema}


HEADERS: dict[str, Schema] = {
    "WWW-Authenticate": _header('`Bearer error="invalid_token"` (RFC 6750).'),
    "Retry-After": _header("Seconds to wait before trying again.", {"type": "integer"}),
    "Allow": _header("The methods this path serves."),
}


def _problem(description: str, *headers: str) -> Schema:
    answer: Schema = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
    }
    if headers:
        answer["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in headers}
    return answer


#: Every problem answer by name, with its status: routes list the names that apply.
PROBLEMS: dict[str, tuple[int, Schema]] = {
    "Invalid": (400, _problem("`validation_error` or `weak_password`, with field errors.")),
    "InvalidToken": (401, _problem("`invalid_token`.", "WWW-Authenticate")),
    "Refused": (401, _problem("`invalid_credentials` or `mfa_required`.")),
    # A guarded route that also checks a password: the header comes with invalid_token only.
    "Unauthorized": (
        401,
        _problem("`invalid_token` (with `WWW-Authenticate`) or `invalid_credentials`.")
        | {"headers": {"WWW-Authenticate": {"schema": _STR}}},
    ),
    "LoginRequired": (401, _problem("`login_required`: sign in again, then decide.")),
    "NotFound": (404, _problem("`not_found`: no such object, or not the caller's.")),
    "MethodNotAllowed": (405, _problem("`method_not_allowed` (any undeclared method).", "Allow")),
    "Conflict": (409, _problem("The account's state forbids it (the `code` says why).")),
    "TooManyAttempts": (429, _problem("`too_many_attempts`.", "Retry-After")),
    "Unavailable": (
        503,
        _problem("`service_unavailable`: the store or keys are down.", "Retry-After"),
    ),
}


@dataclass(frozen=True)
class Operation:
    """What one route answers that ``app.routes`` cannot say."""

    summary: str
    status: int
    #: A name in SCHEMAS, None for an empty answer, or a media type -> schema map.
    answer: str | Mapping[str, Schema] | None
    problems: tuple[str, ...] = ("Unavailable",)
    query: Mapping[str, Schema] = field(default_factory=dict)
    #: Answers that are not problem documents, other than the success one (by status).
    other: Mapping[int, Schema] = field(default_factory=dict)
    #: The fields of a form body (``application/x-www-form-urlencoded``), all strings.
    form: tuple[str, ...] = ()


_STORE = ("Unavailable",)
_THROTTLED = ("TooManyAttempts", "Unavailable")
_TEXT_ANSWER: Mapping[str, Schema] = {"text/html": _STR, "text/css": _STR, "text/javascript": _STR}

_AUTHORIZE_PARAMETERS = (
    *("response_type", "client_id", "redirect_uri", "scope", "state", "nonce"),
    *("code_challenge", "code_challenge_method", "prompt", "max_age", "id_token_hint"),
)
_TOKEN_PARAMETERS = (
    *("grant_type", "code", "redirect_uri", "code_verifier"),
    *("client_id", "client_secret", "refresh_token", "scope"),
)
_AUTHORIZE = Operation(
    "Start a sign-in (RFC 6749 4.1.1, OIDC Core 3.1.2.1): 302 to the web page with a"
    " request_id, or back to the client with an error",
    302,
    None,
    (),
    query={name: _STR for name in _AUTHORIZE_PARAMETERS},
    other={
        400: {
            "description": "An unknown client or redirect URI: a page, never a redirect.",
            "content": {"text/html": {"schema": _STR}},
        }
    },
)
_OAUTH_ERRORS: Mapping[int, Schema] = {
    400: {
        "description": "An RFC 6749 error.",
        "content": {JSON: {"schema": _ref("OAuthError")}},
    },
    401: {
        "description": "`invalid_client`.",
        "headers": {"WWW-Authenticate": {"schema": _STR}},
        "content": {JSON: {"schema": _ref("OAuthError")}},
    },
}
_LOGOUT_PARAMETERS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id")
_LOGOUT = Operation(
    "RP-initiated logout: end the session the ID token names; 302 to a registered"
    " post_logout_redirect_uri, else the signed-out page",
    200,
    {"text/html": _STR},
    (),
    query={name: _STR for name in _LOGOUT_PARAMETERS},
    other={
        302: {"description": "Back to the client's registered post-logout URI."},
        400: {
            "description": "A bad id_token_hint or an unregistered URI: a page, never a redirect.",
            "content": {"text/html": {"schema": _STR}},
        },
    },
)
_USERINFO = Operation(
    "The claims of a client's access token (OIDC Core 5.3)",
    200,
    "UserInfo",
    ("InvalidToken", *_STORE),
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/register"): Operation(
        "Create an account (limited per client IP)", 201, "Registered", ("Conflict", *_THROTTLED)
    ),
    ("POST", "/login"): Operation("Log in", 200, "TokenPair", ("Refused", *_THROTTLED)),
    ("POST", "/token/refresh"): Operation(
        "Spend a refresh token for a new pair", 200, "TokenPair", ("InvalidToken", *_STORE)
    ),
    ("POST", "/logout"): Operation("End this session", 204, None),
    ("POST", "/logout/all"): Operation("End every session", 204, None),
    ("GET", "/me/sessions"): Operation("List live sessions", 200, "SessionList"),
    ("DELETE", "/me/sessions/{session_id}"): Operation(
        "End one session", 204, None, ("NotFound", *_STORE)
    ),
    ("GET", "/protected"): Operation("Who is calling", 200, "Protected", ()),
    ("GET", "/me"): Operation("The caller's profile", 200, "User", ("NotFound", *_STORE)),
    ("PATCH", "/me"): Operation(
        "Change the display name, or the email after the step-up (password, and a code when"
        " MFA is on)",
        200,
        "User",
        ("Refused", "NotFound", "Conflict", *_THROTTLED),
    ),
    ("DELETE", "/me"): Operation(
        "Delete the account", 204, None, ("Refused", "NotFound", *_THROTTLED)
    ),
    ("POST", "/me/password"): Operation(
        "Change the password", 204, None, ("Refused", "NotFound", *_THROTTLED)
    ),
    ("GET", "/me/activity"): Operation("Recent security events", 200, "EventList"),
    ("POST", "/password/forgot"): Operation("Mail a reset link", 202, "Message", _THROTTLED),
    ("POST", "/password/reset"): Operation(
        "Set a new password with a reset token", 204, None, ("InvalidToken", *_THROTTLED)
    ),
    ("POST", "/email/verify"): Operation(
        "Verify an email with its token", 204, None, ("InvalidToken", *_THROTTLED)
    ),
    ("POST", "/me/email/verification"): Operation(
        "Mail a new verification link (limited per account and address)",
        202,
        "Message",
        ("NotFound", *_THROTTLED),
    ),
    ("POST", "/me/mfa/totp"): Operation(
        "Start a TOTP enrolment (with the password)",
        200,
        "TotpEnrolment",
        ("Refused", "NotFound", "Conflict", *_THROTTLED),
    ),
    ("POST", "/me/mfa/totp/confirm"): Operation(
        "Confirm the enrolment", 200, "RecoveryCodes", ("NotFound", "Conflict", *_THROTTLED)
    ),
    ("DELETE", "/me/mfa/totp"): Operation(
        "Turn MFA off", 204, None, ("Refused", "NotFound", *_THROTTLED)
    ),
    ("GET", "/me/passkeys"): Operation("The caller's passkeys, newest first", 200, "PasskeyList"),
    ("POST", "/me/passkeys/options"): Operation(
        "Start a passkey enrolment (password, and a code when MFA is on)",
        200,
        "CreationOptions",
        ("Refused", "NotFound", "Conflict", *_THROTTLED),
    ),
    ("POST", "/me/passkeys"): Operation(
        "Finish a passkey enrolment", 201, "Passkey", ("NotFound", "Conflict", *_STORE)
    ),
    ("PATCH", "/me/passkeys/{passkey_id}"): Operation(
        "Rename a passkey", 200, "Passkey", ("NotFound", *_STORE)
    ),
    ("DELETE", "/me/passkeys/{passkey_id}"): Operation(
        "Remove a passkey", 204, None, ("NotFound", *_STORE)
    ),
    ("POST", "/passkeys/options"): Operation(
        "Start a passkey sign-in", 200, "RequestOptions", _THROTTLED
    ),
    ("POST", "/passkeys/login"): Operation(
        "Sign in with a passkey", 200, "TokenPair", ("Refused", *_THROTTLED)
    ),
    ("GET", "/todos"): Operation(
        "A page of to-dos, newest first",
        200,
        "TodoPage",
        query={
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "cursor": {"type": "string", "description": "The previous page's next_cursor."},
        },
    ),
    ("POST", "/todos"): Operation("Add a to-do", 201, "Todo", ("Conflict", *_STORE)),
    ("GET", "/todos/{todo_id}"): Operation("One to-do", 200, "Todo", ("NotFound", *_STORE)),
    ("PATCH", "/todos/{todo_id}"): Operation("Change a to-do", 200, "Todo", ("NotFound", *_STORE)),
    ("DELETE", "/todos/{todo_id}"): Operation("Delete a to-do", 204, None, ("NotFound", *_STORE)),
    ("GET", "/"): Operation("The web page", 200, {"text/html": _STR}, ()),
    ("GET", "/assets/{name}"): Operation(
        "A file of the web page", 200, _TEXT_ANSWER, ("NotFound",)
    ),
    ("GET", "/.well-known/jwks.json"): Operation("Keys that verify access tokens", 200, "JwkSet"),
    ("GET", "/.well-known/openid-configuration"): Operation(
        "OpenID Provider metadata", 200, "Discovery"
    ),
    ("GET", "/.well-known/oauth-authorization-server"): Operation(
        "OAuth authorization server metadata (RFC 8414)", 200, "Discovery"
    ),
    ("GET", "/oauth2/authorize"): _AUTHORIZE,
    ("POST", "/oauth2/authorize"): replace(_AUTHORIZE, form=_AUTHORIZE_PARAMETERS),
    ("GET", "/oauth2/requests/{request_id}"): Operation(
        "The authorization request the web page asks the user about",
        200,
        "AuthorizationRequest",
        ("NotFound", *_STORE),
    ),
    ("POST", "/oauth2/requests/{request_id}"): Operation(
        "The user's decision: allow or deny (the request is spent)",
        200,
        "RedirectTo",
        ("LoginRequired", "NotFound", *_STORE),
    ),
    ("POST", "/oauth2/token"): Operation(
        "Exchange a code (PKCE S256) for tokens; the client authenticates by Basic, by"
        " form fields, or (public clients) by client_id alone",
        200,
        "OAuthTokens",
        (),
        other=_OAUTH_ERRORS,
        form=_TOKEN_PARAMETERS,
    ),
    ("POST", "/oauth2/revoke"): Operation(
        "Revoke a token (RFC 7009): either token of a session ends the session; 200 for"
        " an unknown token too",
        200,
        {JSON: {"type": "object"}},
        (),
        other=_OAUTH_ERRORS,
        form=("token", "token_type_hint", "client_id", "client_secret"),
    ),
    ("POST", "/oauth2/introspect"): Operation(
        "Introspect a token (RFC 7662)",
        200,
        "Introspection",
        (),
        other=_OAUTH_ERRORS,
        form=("token", "token_type_hint", "client_id", "client_secret"),
    ),
    ("GET", "/oauth2/logout"): _LOGOUT,
    ("POST", "/oauth2/logout"): replace(_LOGOUT, form=_LOGOUT_PARAMETERS),
    ("GET", "/me/apps"): Operation("The apps the user allowed (connected apps)", 200, "AppList"),
    ("DELETE", "/me/apps/{client_id}"): Operation(
        "Remove an app's access: its tokens end at once", 204, None, ("NotFound", *_STORE)
    ),
    ("GET", "/oauth2/userinfo"): _USERINFO,
    ("POST", "/oauth2/userinfo"): replace(_USERINFO, form=("access_token",)),
    ("GET", "/health"): Operation(
        "Health of the dependencies",
        200,
        "Health",
        (),
        other={
            503: {
                "description": "A dependency is down.",
                "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
                "content": {JSON: {"schema": _ref("Health")}},
            }
        },
    ),
    ("GET", "/openapi.json"): Operation("This document", 200, "OpenApi", ()),
}


def served_routes(app: Chalice) -> dict[tuple[str, str], RouteEntry]:
    """Every (method, path) a view serves: the 405 views are left out."""
    return {
        (method, path): entry
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if entry.view_name != NOT_SERVED
    }


def document(app: Chalice, bodies: Mapping[tuple[str, str], Body]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``; ``ValueError`` if OPERATIONS or ``bodies``
    names a route the app does not serve, or the app serves one OPERATIONS lacks."""
    routes = served_routes(app)
    for missing in set(routes) - set(OPERATIONS):
        raise ValueError(f"served but not documented: {missing}")
    for stale in (set(OPERATIONS) | set(bodies)) - set(routes):
        raise ValueError(f"documented but not served: {stale}")
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), entry in routes.items():
        operation = _operation(entry, OPERATIONS[(method, path)], bodies.get((method, path)))
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse",
            "version": "1",
            "description": (
                "Accounts, sessions and per-user to-dos. Every error is an RFC 9457 problem "
                "document; any method a path does not list answers 405 `method_not_allowed` "
                "with `Allow`. Every answer carries `X-Request-Id`."
            ),
        },
        # Relative to where this document is served, so it holds under any stage path.
        "servers": [{"url": "."}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "headers": HEADERS,
            "responses": {name: answer for name, (_, answer) in PROBLEMS.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(entry: RouteEntry, operation: Operation, body: Body | None) -> dict[str, Any]:
    problems = list(operation.problems)
    if body is not None or operation.query or entry.view_args or operation.form:
        problems.insert(0, "Invalid")
    if entry.authorizer is not None:
        problems = ["InvalidToken", *problems, "Unavailable"]
    if {"InvalidToken", "Refused"} <= set(problems):
        problems = ["Unauthorized" if p == "InvalidToken" else p for p in problems]
    responses: dict[str, Any] = {str(operation.status): _answer(operation)}
    responses.update({str(status): answer for status, answer in operation.other.items()})
    for name in dict.fromkeys(problems):  # in order, once each
        status, _ = PROBLEMS[name]
        responses.setdefault(str(status), {"$ref": f"#/components/responses/{name}"})
    result: dict[str, Any] = {
        "operationId": entry.view_name,
        "summary": operation.summary,
        "responses": responses,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in entry.view_args
    ] + [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in operation.query.items()
    ]
    if parameters:
        result["parameters"] = parameters
    if operation.form:
        fields = {name: _STR for name in operation.form}
        schema = {"type": "object", "properties": fields}
        result["requestBody"] = {"required": False, "content": {FORM: {"schema": schema}}}
    if body is not None:
        result["requestBody"] = {
            "required": not body.optional,
            "content": {JSON: {"schema": body_schema(body.fields)}},
        }
    if entry.authorizer is not None:
        result["security"] = [{"bearer": []}]
    return result


def _answer(operation: Operation) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": operation.summary}
    if isinstance(operation.answer, str):
        answer["content"] = {JSON: {"schema": _ref(operation.answer)}}
    elif operation.answer is not None:
        answer["content"] = {kind: {"schema": s} for kind, s in operation.answer.items()}
    return answer


def body_schema(fields: tuple[Field, ...]) -> Schema:
    """The JSON Schema ``http.json_object`` enforces: only these members, each of its
    type and size; an optional member may be null (it then counts as absent)."""
    properties: dict[str, Schema] = {}
    for spec in fields:
        if spec.shape is not None:
            shaped = spec.shape.schema()
            properties[spec.name] = (
                shaped if spec.required else {"anyOf": [shaped, {"type": "null"}]}
            )
            continue
        kind = "boolean" if spec.kind is bool else "string"
        schema: Schema = {"type": kind if spec.required else [kind, "null"]}
        if spec.kind is str:
            schema["maxLength"] = spec.max_length
        properties[spec.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
