"""Render ``infra/template.json``: ``infra/base.json`` plus what is derived from code.

``chalice package --merge-template infra/template.json`` deep-merges the result into the
template Chalice generates, so what this adds under ``RestAPI``'s ``DefinitionBody``
lands in the API document Chalice generates and deploys with the API itself:

- ``x-amazon-apigateway-gateway-responses`` from ``chalicelib.edge.gateway.answer`` for every
  type in ``GATEWAY_ANSWERS`` (the table the local adapter also uses), so AWS, ``chalice
  local`` and the tests answer alike. In the document rather than as separate
  ``AWS::ApiGateway::GatewayResponse`` resources: those change the API after its
  deployment and take effect only at the next one, while a change to the document makes
  a new deployment (SAM hashes the body into the deployment's name).
- for every route's methods except OPTIONS (a browser's preflight carries no key), an
  ``x-api-key`` requirement when the ``ApiKeyRequired`` parameter is true, kept beside
  the bearer authorizer of a guarded route.

It also renders the stage's access-log format and the dashboard's body from Python
structures, so both are valid JSON by construction. A test fails when the committed
file differs from a fresh render.

    .venv/bin/python -m scripts.render_infra            # write infra/template.json
    .venv/bin/python -m scripts.render_infra --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import app as gatehouse
from chalicelib.edge import gateway
from chalicelib.platform import observability

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "infra" / "base.json"
TEMPLATE = ROOT / "infra" / "template.json"
#: Chalice's logical id for the REST API in the packaged template.
REST_API = "RestAPI"
GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"
#: The security scheme API Gateway reads as "this method needs an API key" (the name
#: Chalice gives it for a route declared with ``api_key_required=True``).
API_KEY = "api_key"
API_KEY_SCHEME = {"type": "apiKey", "name": "x-api-key", "in": "header"}
#: The template condition that switches the API key requirement on.
REQUIRE_API_KEY = "RequireApiKey"
#: Stands in for the request id, which API Gateway fills from ``$context.requestId``.
_REQUEST_ID = "\x00request-id\x00"
#: One JSON object per request in the access log group (``$context`` variables).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "authorizerStatus": "$context.authorizer.status",
    "authorizerError": "$context.authorizer.error",
    "principalId": "$context.authorizer.principalId",
    "errorType": "$context.error.responseType",
    "wafResponseCode": "$context.wafResponseCode",
    "apiKeyId": "$context.identity.apiKeyId",
    "xrayTraceId": "$context.xrayTraceId",
}


def static_header(name: str, value: str) -> str:
    """A static header value of a gateway response, in API Gateway's single quotes.

    A single quote inside the quoted value is avoided rather than trusted to API
    Gateway's parsing (which no offline test can check): a Content-Security-Policy
    keyword source ``'none'`` is dropped, since a directive with an empty source list
    matches nothing, exactly as ``'none'`` does (CSP Level 3, "Does url match source
    list": an empty list does not match). Any other quote is refused.
    """
    if name.lower() == "content-security-policy":
        value = "; ".join(
            " ".join(source for source in directive.split() if source != "'none'")
            for directive in value.split(";")
        )
    if "'" in value:
        raise ValueError(f"{name}: a quote inside a static gateway response value")
    return f"'{value}'"


def gateway_response(response_type: str) -> dict[str, Any]:
    """The ``x-amazon-apigateway-gateway-responses`` entry for one row of
    ``GATEWAY_ANSWERS``."""
    answer = gateway.answer(response_type, _REQUEST_ID)
    body = answer["body"]
    # The template is Velocity: a literal "$" or "#" would be read as a reference or a
    # directive. The problem documents hold neither; refuse to render one that does.
    if "$" in body or "#" in body:
        raise ValueError(f"{response_type}: the body is not a plain Velocity template")
    parameters = {
        f"gatewayresponse.header.{name}": (
            "context.requestId" if value == _REQUEST_ID else static_header(name, value)
        )
        for name, value in answer["headers"].items()
    }
    return {
        "statusCode": str(answer["statusCode"]),
        "responseParameters": parameters,
        "responseTemplates": {"application/json": body},
    }


def api_key_requirements() -> dict[str, dict[str, Any]]:
    """``paths`` entries that add the API key to each method's security when
    ``RequireApiKey`` holds, keeping a guarded route's bearer authorizer (both must
    pass: the schemes of one security object are ANDed)."""
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in gatehouse.app.routes.items():
        for method, entry in methods.items():
            if method == "OPTIONS":
                continue
            plain: list[dict[str, list[str]]] = []
            if entry.authorizer is not None:
                plain = [{entry.authorizer.name: []}]
            keyed = [{**(plain[0] if plain else {}), API_KEY: []}]
            otherwise: Any = plain or {"Ref": "AWS::NoValue"}
            security = {"Fn::If": [REQUIRE_API_KEY, keyed, otherwise]}
            paths.setdefault(path, {})[method.lower()] = {"security": security}
    return paths


def _metric(namespace: str, name: str, *dimensions: str, **options: str) -> list[Any]:
    return [namespace, name, *dimensions, *([options] if options else [])]


def _widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "stat": stat,
            "period": 300,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard() -> dict[str, Any]:
    """The dashboard's widgets: ``${...}`` are ``Fn::Sub`` references to the stack."""
    api = ("ApiName", "gatehouse-${Stage}", "Stage", "api")
    ours = ("Stage", "${Stage}")
    apigw = "AWS/ApiGateway"
    ns = observability.NAMESPACE
    return {
        "widgets": [
            _widget(
                "API requests and errors",
                [
                    _metric(apigw, "Count", *api),
                    _metric(apigw, "4XXError", *api),
                    _metric(apigw, "5XXError", *api),
                    _metric(ns, "ServerError", *ours),
                ],
            ),
            _widget(
                "API latency (ms)",
                [
                    _metric(apigw, "Latency", *api, stat="p50"),
                    _metric(apigw, "Latency", *api, stat="p99"),
                    _metric(apigw, "IntegrationLatency", *api, stat="p99"),
                ],
                stat="p99",
            ),
            _widget(
                "Logins",
                [
                    _metric(ns, name, *ours)
                    for name in ("LoginSucceeded", "LoginFailed", "Throttled", "MfaChallenged")
                ],
            ),
            _widget(
                "Passkey sign-ins (also counted in Logins)",
                [
                    _metric(ns, name, *ours)
                    for name in ("PasskeyLoginSucceeded", "PasskeyLoginFailed", "PasskeyCloned")
                ],
            ),
            _widget(
                "Sessions and accounts",
                [
                    _metric(ns, name, *ours)
                    for name in ("RefreshReuse", "TokenRefreshed", "Registration")
                ],
            ),
            _widget(
                "DynamoDB throttles",
                [
                    _metric("AWS/DynamoDB", name, "TableName", "${Table}")
                    for name in ("ReadThrottleEvents", "WriteThrottleEvents")
                ],
            ),
            _widget(
                "Mail queue and dead-letter queue",
                [
                    _metric(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        "${MailQueue.QueueName}",
                    ),
                    _metric(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        "${MailDeadLetterQueue.QueueName}",
                    ),
                ],
                stat="Maximum",
            ),
        ]
    }


def render() -> str:
    """The text of ``infra/template.json``."""
    template: dict[str, Any] = json.loads(BASE.read_text(encoding="utf-8"))
    resources: dict[str, Any] = template["Resources"]
    api = resources[REST_API]["Properties"]
    api["AccessLogSetting"]["Format"] = json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":"))
    api["DefinitionBody"] = {
        GATEWAY_RESPONSES: {t: gateway_response(t) for t in gateway.GATEWAY_ANSWERS},
        "securityDefinitions": {API_KEY: API_KEY_SCHEME},
        "paths": api_key_requirements(),
    }
    body = json.dumps(dashboard(), separators=(",", ":"))
    resources["Dashboard"]["Properties"]["DashboardBody"] = {"Fn::Sub": body}
    return json.dumps(template, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TEMPLATE.read_text(encoding="utf-8") if TEMPLATE.exists() else ""
        if current != text:
            sys.stderr.write(f"{TEMPLATE} is stale: run python -m scripts.render_infra\n")
            return 1
        return 0
    TEMPLATE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
