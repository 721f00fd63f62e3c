"""Requests and responses: body parsing and limits, request facts, answers, problems.

Routes call ``json_object`` to read a body and the response helpers to answer. What
every response gets on the way out (headers, problem rendering, CORS) is middleware.py's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from chalice.app import Request, Response

from chalicelib.accounts.sessions import Device
from chalicelib.oauth.browser import SIGNIN_COOKIE
from chalicelib.oauth.messages import HttpAnswer, HttpRequest
from chalicelib.platform import errors
from chalicelib.platform.shapes import Shape

PROBLEM_TYPE = "urn:gatehouse:problem:{code}"
PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


# ---------------------------------------------------------------- request bodies


@dataclass(frozen=True)
class Field:
    """One allowed member of a JSON body: its type, whether it must be there, its size;
    an object member (``kind=dict``) is checked against its ``shape``."""

    name: str
    kind: type = str
    required: bool = True
    max_length: int = 1024
    shape: Shape | None = None


@dataclass(frozen=True)
class Body:
    """What one route accepts as its body: the fields, and whether it may be left out.

    app.py's ``BODIES`` maps each route to one; the route checks against it and the
    OpenAPI document is generated from it, so the two cannot disagree.
    """

    fields: tuple[Field, ...]
    optional: bool = False


def json_object(
    request: Request, fields: tuple[Field, ...], *, max_bytes: int, optional: bool = False
) -> dict[str, Any]:
    """Parse the body as a JSON object holding only ``fields``, each of its declared type.

    Every way a body can be wrong is a 400 ``validation_error``: too large, not UTF-8,
    not JSON, duplicate keys, not an object, unknown or missing members, wrong types,
    strings that cannot be encoded (lone surrogates). An optional member sent as
    ``null`` counts as absent. With ``optional``, no body at all reads as ``{}``.
    """
    raw = request.raw_body
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if len(data) > max_bytes:
        raise errors.ValidationError(f"The body is larger than {max_bytes} bytes.")
    if not data.strip():
        if optional:
            return {}
        raise errors.ValidationError("A JSON object body is required.")
    try:
        parsed = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
        )
    except (ValueError, RecursionError):
        raise errors.ValidationError("The body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise errors.ValidationError("The body must be a JSON object.")
    return _check_fields(parsed, fields)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_fields(body: dict[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    known = {f.name: f for f in fields}
    problems = [
        errors.FieldError(name, "unknown_field", f"'{name}' is not an accepted field.")
        for name in body
        if name not in known
    ]
    result: dict[str, Any] = {}
    for field in fields:
        value = body.get(field.name)
        if value is None or (field.required and value == ""):
            if field.required:
                problems.append(
                    errors.FieldError(field.name, "required", f"'{field.name}' is required.")
                )
            continue
        found = _field_problems(field, value)
        if found:
            problems.extend(found)
        else:
            result[field.name] = value
    if problems:
        raise errors.ValidationError("The request body has invalid fields.", errors=tuple(problems))
    return result


def _field_problems(field: Field, value: Any) -> list[errors.FieldError]:
    if field.shape is not None:
        return field.shape.problems(field.name, value)
    # bool is a subclass of int in Python; compare types exactly.
    if type(value) is not field.kind:
        kind = "a string" if field.kind is str else "a boolean"
        return [errors.FieldError(field.name, "invalid_type", f"'{field.name}' must be {kind}.")]
    if isinstance(value, str):
        if len(value) > field.max_length:
            return [
                errors.FieldError(
                    field.name, "too_long", f"'{field.name}' is longer than {field.max_length}."
                )
            ]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [
                errors.FieldError(
                    field.name, "invalid_string", f"'{field.name}' is not valid Unicode text."
                )
            ]
    return []


# ---------------------------------------------------------------- request facts


@dataclass(frozen=True)
class Caller:
    """Who the authorizer said is calling: from the API Gateway authorizer context."""

    user_id: str
    username: str
    session_id: str


def caller(request: Request) -> Caller:
    context = request.context.get("authorizer") or {}
    return Caller(
        user_id=str(context.get("principalId", "")),
        username=str(context.get("username", "")),
        session_id=str(context.get("sid", "")),
    )


def device(request: Request) -> Device:
    """The caller's user agent (truncated) and source IP, as API Gateway saw it."""
    identity = request.context.get("identity") or {}
    return Device(
        user_agent=str(request.headers.get("user-agent", ""))[:256],
        ip=str(identity.get("sourceIp") or ""),
    )


FORM = "application/x-www-form-urlencoded"
#: Most fields a form body may hold (an OAuth request has about ten).
MAX_FORM_FIELDS = 50


def is_form(request: Request) -> bool:
    """Whether the body is declared ``application/x-www-form-urlencoded``."""
    content_type = str(request.headers.get("content-type", "")).split(";")[0].strip().lower()
    return content_type == FORM


def form_values(request: Request, *, max_bytes: int) -> dict[str, list[str]]:
    """A form body's fields, every value of a repeated name kept; ``{}`` when the body
    is not a form (a GET). Too large, not UTF-8 or too many fields: ``ValidationError``."""
    if not is_form(request):
        return {}
    raw = request.raw_body
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if len(data) > max_bytes:
        raise errors.ValidationError(f"The body is larger than {max_bytes} bytes.")
    try:
        return parse_qs(
            data.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:  # UnicodeDecodeError included
        raise errors.ValidationError("The form body is malformed.") from None


def query_values(request: Request) -> dict[str, list[str]]:
    """The query string's parameters, every value of a repeated name kept."""
    params = request.query_params
    return {name: list(params.getlist(name)) for name in params} if params else {}


def oauth_request(request: Request, url: str, *, max_bytes: int) -> HttpRequest:
    """The OAuth provider's view of ``request``; ``url`` is the route's URL under the
    issuer (configuration), never one made from the ``Host`` header."""
    return HttpRequest(
        method=request.method,
        url=url,
        headers=request.headers,
        query=query_values(request),
        form=form_values(request, max_bytes=max_bytes),
        device=device(request),
        signin=cookie(request, SIGNIN_COOKIE),
    )


def oauth_response(request: Request, answer: HttpAnswer) -> Response:
    headers: dict[str, str | list[str]] = dict(answer.headers)
    if answer.signed_out:
        headers["Set-Cookie"] = _dropped_cookies(request)
    return Response(body=answer.body, status_code=answer.status, headers=headers)


def stage_prefix(request: Request) -> str:
    """The path this API is served under (``/api``; locally ``""``), for cookie paths.

    The stage (or custom domain base path) is what the full request path has in front
    of the matched resource path. Only the path: the public URL (links in mail, the
    issuer) is configuration (``ISSUER``), never the ``Host`` header a client controls.
    """
    full_path = str(request.context.get("path") or "")
    prefix = full_path.removesuffix(request.path) if full_path.endswith(request.path) else ""
    return prefix.rstrip("/")


# ---------------------------------------------------------------- responses


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})}
    )


def no_content() -> Response:
    return Response(body="", status_code=204, headers={})


def token_response(pair: dict[str, Any]) -> Response:
    """A TokenPair answer: never stored by any cache (RFC 6749 5.1)."""
    return json_response(pair, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def redirect(location: str) -> Response:
    return Response(body="", status_code=301, headers={"Location": location})


def text_response(body: str, content_type: str, headers: Mapping[str, str]) -> Response:
    return Response(body=body, status_code=200, headers={"Content-Type": content_type, **headers})


REFRESH_COOKIE = "gh_refresh"


def cookie(request: Request, name: str) -> str | None:
    """One cookie's value from the ``Cookie`` header, if sent."""
    jar = SimpleCookie()
    try:
        jar.load(str(request.headers.get("cookie", "")))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def refresh_cookie(request: Request, value: str, max_age: int) -> str:
    """The ``Set-Cookie`` value that keeps a refresh token away from page scripts:
    HttpOnly, Secure, SameSite=Strict, and sent only to the API's ``/token`` routes."""
    path = f"{stage_prefix(request)}/token"
    return (
        f"{REFRESH_COOKIE}={value}; Path={path}; Max-Age={max_age}; "
        "HttpOnly; Secure; SameSite=Strict"
    )


def signin_cookie(request: Request, value: str, max_age: int) -> str:
    """The ``Set-Cookie`` value of the provider's browser sign-in (oauth/browser.py):
    HttpOnly, Secure, SameSite=Lax (the browser arrives from a client's site), sent only
    to the ``/oauth2`` routes."""
    path = f"{stage_prefix(request)}/oauth2"
    return (
        f"{SIGNIN_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    )


def signed_out(request: Request) -> Response:
    """204, and the refresh and sign-in cookies (if the browser holds them) are dropped."""
    response = no_content()
    response.headers["Set-Cookie"] = _dropped_cookies(request)
    return response


def _dropped_cookies(request: Request) -> list[str]:
    return [refresh_cookie(request, "", 0), signin_cookie(request, "", 0)]


def token_response_for(
    request: Request, pair: dict[str, Any], in_cookie: bool, signin: str | None = None
) -> Response:
    """A TokenPair answer; with ``in_cookie`` the refresh token travels only in the
    cookie, and the body's ``refresh_token`` is null (see docs/web-page.md), and
    ``signin`` (the provider's browser sign-in) is set beside it."""
    if not in_cookie:
        return token_response(pair)
    response = token_response(pair | dict.fromkeys(("refresh_token",)))
    max_age = pair["refresh_expires_in"]
    cookies = [refresh_cookie(request, pair["refresh_token"], max_age)]
    if signin is not None:
        cookies.append(signin_cookie(request, signin, max_age))
    response.headers["Set-Cookie"] = cookies
    return response


def public_json(body: Any, max_age: int) -> Response:
    """A public document (JWKS, discovery) that caches may keep for ``max_age`` seconds."""
    return json_response(body, headers={"Cache-Control": f"public, max-age={max_age}"})


def deny(method_arn: str) -> dict[str, Any]:
    """An authorizer answer that refuses the call (API Gateway: ACCESS_DENIED, see gateway.py).

    A deny policy rather than ``raise Exception("Unauthorized")``: it needs no magic
    message, and any *other* exception stays distinguishable as an authorizer failure.
    """
    return {
        "principalId": "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [method_arn]}
            ],
        },
        "context": {},
    }


def problem_document(error: errors.GatehouseError) -> dict[str, Any]:
    """The RFC 9457 body for ``error``; field errors only when there are some."""
    doc: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(code=error.code),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.errors:
        doc["errors"] = [e.as_json() for e in error.errors]
    return doc


def problem_headers(error: errors.GatehouseError) -> dict[str, str]:
    headers = {"Content-Type": PROBLEM_JSON}
    if isinstance(error, errors.NoToken):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(error, errors.InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.MethodNotAllowed) and error.allow:
        headers["Allow"] = error.allow
    return headers


def problem(
    error: errors.GatehouseError, extra_headers: Mapping[str, str] | None = None
) -> Response:
    headers: dict[str, str | list[str]] = {**problem_headers(error), **(extra_headers or {})}
    return Response(body=problem_document(error), status_code=error.status, headers=headers)
