"""GET /openapi.json: a valid OpenAPI 3.1 document that names every route the app serves,
with the body rules the routes really enforce (the same ``BODIES`` specs)."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.app import Chalice, Response
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from app import app
from chalicelib.edge import openapi
from chalicelib.edge.http import Body, Field
from tests.conftest import Api


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    body: dict[str, Any] = response.json_body
    return body


def _app() -> Chalice:
    from app import app  # noqa: PLC0415 - after the environment is set (see conftest)

    return app


def test_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_names_every_served_route_and_nothing_else(document: dict[str, Any]) -> None:
    app = _app()
    served = {
        (method.lower(), path)
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if entry.view_name != "method_not_allowed"
    }
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert documented == served
    for path, entries in app.routes.items():
        for method, entry in entries.items():
            if entry.view_name == "method_not_allowed":
                continue
            operation = document["paths"][path][method.lower()]
            assert operation["operationId"] == entry.view_name
            guarded = entry.authorizer is not None
            assert ("security" in operation) == guarded, (method, path)
            assert ("401" in operation["responses"]) or not guarded, (method, path)


def test_body_schemas_are_the_bodies_the_routes_check(document: dict[str, Any]) -> None:
    from chalicelib.edge.bodies import BODIES  # noqa: PLC0415

    with_body = {
        (m.upper(), p)
        for p, ops in document["paths"].items()
        for m, op in ops.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }
    assert with_body == set(BODIES)
    for (method, path), body in BODIES.items():
        request = document["paths"][path][method.lower()]["requestBody"]
        assert request["required"] is not body.optional
        schema = request["content"]["application/json"]["schema"]
        assert schema["additionalProperties"] is False
        assert schema["required"] == [f.name for f in body.fields if f.required]
        for field in body.fields:
            member = schema["properties"][field.name]
            if field.shape is not None:  # an object member: its shape's schema (nullable)
                shaped = field.shape.schema()
                assert member == (
                    shaped if field.required else {"anyOf": [shaped, {"type": "null"}]}
                )
            elif field.kind is bool:
                assert member["type"] in ("boolean", ["boolean", "null"])
            else:
                assert member["maxLength"] == field.max_length


def test_a_member_over_its_documented_max_length_is_refused(
    api: Api, document: dict[str, Any]
) -> None:
    schema = document["paths"]["/password/forgot"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    too_long = "a" * (schema["properties"]["email"]["maxLength"] + 1)
    response = api.post("/password/forgot", {"email": too_long})
    assert response.status_code == 400
    assert response.json_body["errors"][0]["code"] == "too_long"


def test_problem_answers_carry_their_headers(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    assert "WWW-Authenticate" in responses["InvalidToken"]["headers"]
    assert "Retry-After" in responses["TooManyAttempts"]["headers"]
    assert "Retry-After" in responses["Unavailable"]["headers"]
    login = document["paths"]["/login"]["post"]["responses"]
    assert {"200", "400", "401", "429", "503"} <= set(login)


def test_a_route_without_its_documentation_is_refused() -> None:
    extra = Chalice(app_name="drift")

    @extra.route("/new")
    def new() -> Response:
        return Response(body={})

    with pytest.raises(ValueError, match="served but not documented"):
        openapi.document(extra, {})


def test_a_body_for_a_route_that_is_gone_is_refused() -> None:
    app = _app()
    stale = {("POST", "/gone"): Body((Field("x"),))}
    with pytest.raises(ValueError, match="documented but not served"):
        openapi.document(app, stale)


def test_form_bodies_are_documented_on_exactly_the_routes_that_take_forms(
    document: dict[str, Any],
) -> None:
    form = "application/x-www-form-urlencoded"
    documented = {
        (m.upper(), p)
        for p, ops in document["paths"].items()
        for m, op in ops.items()
        if form in op.get("requestBody", {}).get("content", {})
    }
    served = {
        (method, path)
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if form in entry.content_types and method == "POST"
    }
    assert (
        documented
        == served
        == {
            ("POST", "/oauth2/authorize"),
            ("POST", "/oauth2/token"),
            ("POST", "/oauth2/userinfo"),
            ("POST", "/oauth2/revoke"),
            ("POST", "/oauth2/introspect"),
            ("POST", "/oauth2/logout"),
        }
    )
