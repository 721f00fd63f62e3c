"""The edge every API request passes through, whatever route serves it.

``middleware_for`` (registered by app.py) stamps every response with the request id
and the security headers, renders ``GatehouseError`` as problem+json, rewrites the
bodies Chalice makes itself (405, 415, its 500) so that no ``{Code, Message}`` body
reaches a client, answers CORS preflights for the stage's allowed origins, and writes
the one access-log line. ``answer_other_methods`` makes every undeclared method a 405
problem on API Gateway as locally. ``gateway.py`` applies the same headers to the
answers API Gateway makes itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from chalice.app import Chalice, Request, Response

from chalicelib.edge.http import caller, problem
from chalicelib.platform import errors
from chalicelib.platform.observability import AUDIT, REQUEST_ID, log_request

_log = logging.getLogger("gatehouse")

#: On every response, whatever produced it.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}
#: On every response that does not set its own (the web page does): a JSON answer may
#: load nothing, be framed by nobody, and is never cached unless a route says so.
DEFAULT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: What a cross-origin script may send and read (CORS).
_ALLOW_HEADERS = "Authorization, Content-Type"
_EXPOSE_HEADERS = "X-Request-Id, Retry-After, WWW-Authenticate"
_PREFLIGHT_MAX_AGE = "600"
#: The metrics a request counts, by (method, route, status, problem code); ``None``
#: matches anything. Every 429 counts as Throttled and every 5xx as ServerError. A
#: passkey sign-in is a login too: it counts as LoginSucceeded/LoginFailed (so the
#: login-failure alarm watches both ways in) and as PasskeyLogin* for its own share.
_METRICS: tuple[tuple[str | None, str | None, int | None, str | None, str], ...] = (
    ("POST", "/login", 200, None, "LoginSucceeded"),
    ("POST", "/login", 401, "invalid_credentials", "LoginFailed"),
    ("POST", "/passkeys/login", 200, None, "LoginSucceeded"),
    ("POST", "/passkeys/login", 401, "invalid_credentials", "LoginFailed"),
    ("POST", "/passkeys/login", 200, None, "PasskeyLoginSucceeded"),
    ("POST", "/passkeys/login", 401, "invalid_credentials", "PasskeyLoginFailed"),
    ("POST", "/login", 401, "mfa_required", "MfaChallenged"),
    ("POST", "/register", 201, None, "Registration"),
    ("POST", "/token/refresh", 200, None, "TokenRefreshed"),
    (None, None, 429, None, "Throttled"),
)


def metrics_for(method: str, route: str, status: int, code: str | None) -> list[str]:
    found = [
        name
        for m, r, s, c, name in _METRICS
        if m in (None, method) and r in (None, route) and s in (None, status) and c in (None, code)
    ]
    if status >= 500:
        found.append("ServerError")
    return found


#: Methods that only read: their lines are not audit lines (unless throttled).
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes that change the user's own data, not their account or sessions, and the
#: passkey sign-in options: they change nothing (a page asks for them every few
#: minutes while it shows the log-in screen), though a throttled one is audited.
_NOT_SECURITY = ("/todos", "/passkeys/options")


def audited(method: str, route: str, status: int) -> bool:
    """Whether a request's line is a security event: every change to an account, its
    sessions, password, email, MFA or passkeys (logins, registrations, refreshes,
    logouts included, whatever the outcome) and every throttled request. Those lines
    carry ``"audit": true``, which the optional archive's subscription filter ships.
    Asking for passkey sign-in options is not one (the sign-in that follows is)."""
    if status == 429:
        return True
    return method not in _READS and not route.startswith(_NOT_SECURITY)


#: Views registered by ``answer_other_methods``: not methods a route serves.
_NOT_SERVED = "method_not_allowed"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def secure(response: Response, request_id: str) -> Response:
    """Apply the common and default headers and the request id."""
    response.headers.update(COMMON_HEADERS)
    for name, value in DEFAULT_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["X-Request-Id"] = request_id
    return response


def answer_other_methods(app: Chalice) -> None:
    """Register a 405 view for every method a path does not serve.

    Locally Chalice answers 405 itself, but API Gateway answers an undeclared method
    with 403 "Missing Authentication Token" before Lambda runs. Declaring the other
    methods makes both say 405 ``method_not_allowed`` with an ``Allow`` header. HEAD
    too (Chalice's own 405 would list these views as served), and OPTIONS, which the
    middleware turns into a CORS preflight answer when it is one. Call it once, after
    every route is declared.
    """
    for path, entries in list(app.routes.items()):
        allowed = ", ".join(sorted(entries))
        missing = [m for m in _METHODS if m not in entries]
        if not missing:
            continue

        def method_not_allowed(_allowed: str = allowed, **_params: str) -> Response:
            raise errors.MethodNotAllowed(allow=_allowed)

        app.route(path, methods=missing, content_types=["*/*"])(method_not_allowed)


# ---------------------------------------------------------------- CORS


class Cors:
    """Cross-origin access for an allow-list of origins (Chalice's ``CORSConfig`` takes
    one). The answer names the caller's origin when it is allowed, and every answer
    says ``Vary: Origin`` so a cache never hands one origin's answer to another. No
    credentials: cross-origin clients send the refresh token in the body; the refresh
    cookie is same-site only."""

    def __init__(self, app: Chalice, origins: Callable[[], frozenset[str]]) -> None:
        self._app = app
        self._origins = origins

    def _served(self, path: str) -> list[str]:
        entries = self._app.routes.get(path, {})
        return sorted(m for m, e in entries.items() if e.view_name != _NOT_SERVED)

    def preflight(self, request: Request) -> Response | None:
        """The answer to a CORS preflight, or None when this is not one."""
        origin = request.headers.get("origin")
        wanted = request.headers.get("access-control-request-method")
        if request.method != "OPTIONS" or not origin or not wanted:
            return None
        served = self._served(request.path)
        if origin not in self._origins() or wanted.upper() not in served:
            return problem(errors.OriginNotAllowed())
        return Response(
            body="",
            status_code=204,
            headers={
                "Access-Control-Allow-Methods": ", ".join(served),
                "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
                "Cache-Control": "no-cache",
            },
        )

    def decorate(self, request: Request, response: Response) -> None:
        origins = self._origins()
        if not origins:
            return
        response.headers["Vary"] = "Origin"
        origin = request.headers.get("origin")
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS


# ---------------------------------------------------------------- middleware

#: Chalice's own error bodies, by status, and what the contract says instead.
_CHALICE_ANSWERS: dict[int, Callable[[], errors.GatehouseError]] = {
    400: lambda: errors.ValidationError("The request is not valid."),
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    415: lambda: errors.ValidationError("The body must be JSON (Content-Type: application/json)."),
}


def _is_chalice_body(response: Response) -> bool:
    body = response.body
    return isinstance(body, dict) and set(body) == {"Code", "Message"}


def _rewrite_chalice_answer(response: Response) -> Response:
    make = _CHALICE_ANSWERS.get(response.status_code)
    if make is None:
        # Chalice's 500: it has already logged the traceback on our logger, with the id.
        _log.error("unhandled exception rendered as 500")
        return problem(errors.GatehouseError())
    keep = {k: str(v) for k, v in response.headers.items() if k.lower() == "allow"}
    return problem(make(), keep)


def middleware_for(
    app: Chalice, cors_origins: Callable[[], frozenset[str]]
) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """The HTTP middleware: CORS, problem rendering, headers and the access log."""
    cors = Cors(app, cors_origins)

    def middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
        started = time.perf_counter()
        request_id = str(request.context.get("requestId") or uuid.uuid4())
        token = REQUEST_ID.set(request_id)
        try:
            try:
                response = cors.preflight(request) or get_response(request)
            except errors.GatehouseError as error:
                response = problem(error)
            if _is_chalice_body(response):
                response = _rewrite_chalice_answer(response)
            cors.decorate(request, response)
            secure(response, request_id)
            body = response.body
            code = body.get("code") if isinstance(body, dict) else None
            fields = {
                "method": request.method,
                "route": request.path,
                "status": response.status_code,
                "user_id": caller(request).user_id or None,
                "code": code,
            }
            if audited(request.method, request.path, response.status_code):
                fields[AUDIT] = True
            log_request(
                _log,
                fields,
                started,
                metrics_for(request.method, request.path, response.status_code, code),
            )
            return response
        finally:
            REQUEST_ID.reset(token)

    return middleware
